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
