"""The segmentation decoder's published size and shapes, and its loss against a hand computation."""

from __future__ import annotations

import pytest
import torch

from adaptor.model.adaptor import count_parameters
from adaptor.model.decoders import TokenGridDecoder
from adaptor.model.loss import segmentation_loss


def test_decoder_has_the_published_trainable_count() -> None:
    assert count_parameters(TokenGridDecoder(768)) == 10_401_409


@pytest.mark.parametrize(("tokens", "size"), [(256, 224), (16, 128), (9, 224)])
def test_decoder_maps_a_token_grid_to_a_full_size_mask(tokens: int, size: int) -> None:
    decoder = TokenGridDecoder(32, channels=(16, 8, 8, 8, 8)).eval()
    assert decoder(torch.randn(2, tokens, 32), size).shape == (2, size, size)


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
