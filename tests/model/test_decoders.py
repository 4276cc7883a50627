"""The segmentation decoder's published size and shapes, both decoders' start near empty masks, and
the loss against a hand computation and against torchvision's focal loss."""

from __future__ import annotations

import pytest
import torch

from adaptor.model.adaptor import count_parameters
from adaptor.model.decoders import TokenGridDecoder
from adaptor.model.loss import EMPTY_PRIOR, segmentation_loss, sigmoid_focal_loss
from adaptor.model.unet import UNetDecoder


def test_decoder_has_the_published_trainable_count() -> None:
    assert count_parameters(TokenGridDecoder(768)) == 10_401_409


@pytest.mark.parametrize(("tokens", "size"), [(256, 224), (16, 128), (9, 224)])
def test_decoder_maps_a_token_grid_to_a_full_size_mask(tokens: int, size: int) -> None:
    decoder = TokenGridDecoder(32, channels=(16, 8, 8, 8, 8)).eval()
    assert decoder(torch.randn(2, tokens, 32), size).shape == (2, size, size)


def test_untrained_decoders_predict_empty_masks() -> None:
    """Both decoders start at focal loss's prior (1 % positive), not at probability 0.5 everywhere."""
    torch.manual_seed(0)
    unet = UNetDecoder((4, 8, 16), widths=(8, 8, 8)).eval()
    stages = [torch.randn(4, c, 32 // 2**k, 32 // 2**k) for k, c in enumerate((4, 8, 16))]
    conv = TokenGridDecoder(32, channels=(16, 8, 8, 8, 8)).eval()
    with torch.no_grad():
        outputs = unet(stages, 64).sigmoid(), conv(torch.randn(4, 16, 32), 64).sigmoid()
    for probabilities in outputs:
        assert float(probabilities.median()) == pytest.approx(EMPTY_PRIOR, rel=0.5)
        assert (probabilities > 0.5).float().mean() < 0.001


def test_decoder_refuses_tokens_that_are_not_a_square_grid() -> None:
    with pytest.raises(ValueError, match="square grid"):
        TokenGridDecoder(8, channels=(8, 8, 8, 8, 8))(torch.randn(1, 10, 8), 32)


def test_segmentation_loss_matches_a_hand_computation() -> None:
    logits = torch.tensor([[[2.0, -1.0], [0.0, 3.0]]])
    masks = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    p = logits.sigmoid()
    p_true = torch.where(masks > 0, p, 1 - p)
    focal = (-((1 - p_true) ** 2) * p_true.log()).mean()
    dice = (2 * (p * masks).sum() + 1) / (p.sum() + masks.sum() + 1)
    expected = 10 * focal - dice.log()
    torch.testing.assert_close(segmentation_loss(logits, masks), expected)


@pytest.mark.parametrize("gamma", [2.0, 0.5])
def test_focal_loss_equals_torchvisions_bit_for_bit(gamma: float) -> None:
    from torchvision.ops import sigmoid_focal_loss as torchvision_focal_loss

    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 16, 16, generator=generator) * 3
    masks = (torch.rand(4, 16, 16, generator=generator) > 0.7).float()
    expected = torchvision_focal_loss(logits, masks, alpha=-1, gamma=gamma, reduction="mean")
    assert torch.equal(sigmoid_focal_loss(logits, masks, gamma), expected)
