import math

import pytest
import torch
import torch.nn.functional as F

from adaptor.model.adaptor import Adaptor, AdaptorConfig, count_parameters
from adaptor.model.heads import make_head
from adaptor.model.loss import contrastive_loss


@pytest.mark.parametrize(("image_dim", "expected"), [(512, 12_011_009), (384, 11_912_705), (768, 12_207_617)])
def test_trainable_parameters_match_the_paper(image_dim: int, expected: int) -> None:
    assert count_parameters(Adaptor(AdaptorConfig(image_dim=image_dim, text_dim=768))) == expected


def test_one_layer_has_the_published_size() -> None:
    layer = Adaptor(AdaptorConfig(image_dim=8, text_dim=8)).layers[0]
    assert count_parameters(layer.attention) == 2_362_368
    assert count_parameters(layer.feed_forward) == 3_148_544
    assert count_parameters(layer) == 5_513_984


def test_pooled_attention_ignores_its_query() -> None:
    """Softmax over a single key is 1: the published pooled mode has no cross-modal fusion."""
    torch.manual_seed(0)
    layer = Adaptor(AdaptorConfig(image_dim=8, text_dim=8)).layers[0].eval()
    source = torch.randn(4, 1, 768)
    first = layer(source=source, query=torch.randn(4, 1, 768))
    second = layer(source=source, query=torch.randn(4, 1, 768))
    assert torch.allclose(first, second, atol=1e-6)


def test_attention_over_tokens_depends_on_its_query() -> None:
    """Over several keys the softmax weights, and so the output, change with the query."""
    torch.manual_seed(0)
    attention = Adaptor(AdaptorConfig(image_dim=8, text_dim=8)).layers[0].attention.eval()
    keys = torch.randn(4, 9, 768)
    first, _ = attention(torch.randn(4, 1, 768), keys, keys)
    second, _ = attention(torch.randn(4, 1, 768), keys, keys)
    assert not torch.allclose(first, second, atol=1e-3)
    single = keys[:, :1]
    first, _ = attention(torch.randn(4, 1, 768), single, single)
    second, _ = attention(torch.randn(4, 1, 768), single, single)
    assert torch.allclose(first, second, atol=1e-6)  # one key: the pooled mode's case


def test_token_mode_ignores_padding_and_adds_two_summary_tokens() -> None:
    torch.manual_seed(0)
    model = Adaptor(AdaptorConfig(image_dim=512, text_dim=768, mode="tokens")).eval()
    assert count_parameters(model) == 12_011_009 + 2 * 768
    image, text = torch.randn(2, 9, 512), torch.randn(2, 7, 768)
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    changed = text.clone()
    changed[1, 4:] = 100.0
    reference = model(image, text, text_mask=mask)
    assert all(
        torch.allclose(a, b, atol=1e-6)
        for a, b in zip(reference, model(image, changed, text_mask=mask), strict=True)
    )
    assert model.encode_image(image).shape == (2, 768) and model.encode_text(text, mask).shape == (2, 768)


def test_outputs_are_unit_norm_and_logit_scale_starts_at_1_over_007() -> None:
    model = Adaptor(AdaptorConfig(image_dim=16, text_dim=12)).eval()
    image, text = model(torch.randn(5, 16), torch.randn(5, 12))
    assert torch.allclose(image.norm(dim=-1), torch.ones(5)) and torch.allclose(
        text.norm(dim=-1), torch.ones(5)
    )
    assert model.scale().item() == pytest.approx(1 / 0.07, rel=1e-5)
    assert model.encode_image(torch.randn(3, 16)).shape == (3, 768)


def test_loss_matches_a_hand_computation() -> None:
    image = F.normalize(torch.tensor([[1.0, 0.0], [0.6, 0.8]]), dim=-1)
    text = F.normalize(torch.tensor([[0.8, 0.6], [0.0, 1.0]]), dim=-1)
    scale = torch.tensor(10.0)
    s = [[10 * 0.8, 10 * (0.48 + 0.48)], [0.0, 10 * 0.8]]  # rows texts, columns images
    t2i = (
        -(
            s[0][0]
            - math.log(math.exp(s[0][0]) + math.exp(s[0][1]))
            + s[1][1]
            - math.log(math.exp(s[1][0]) + math.exp(s[1][1]))
        )
        / 2
    )
    i2t = (
        -(
            s[0][0]
            - math.log(math.exp(s[0][0]) + math.exp(s[1][0]))
            + s[1][1]
            - math.log(math.exp(s[0][1]) + math.exp(s[1][1]))
        )
        / 2
    )
    assert contrastive_loss(image, text, scale).item() == pytest.approx(0.75 * t2i + 0.25 * i2t, rel=1e-5)


def test_heads() -> None:
    assert count_parameters(make_head("linear", 768, 1)) == 769
    assert count_parameters(make_head("mlp", 768, 3)) == 768 * 512 + 2 * 512 + 512 * 3 + 3
    with pytest.raises(ValueError, match="unknown head"):
        make_head("svm", 4, 1)


def test_a_width_that_does_not_split_into_its_heads_names_the_setting() -> None:
    with pytest.raises(ValueError, match=r"pretrain.architecture: width 100 does not split into 12 heads"):
        AdaptorConfig(8, 8, width=100)
