"""Losses: the paper's asymmetric InfoNCE (0.75 text->image + 0.25 image->text) and segmentation's mix."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def contrastive_loss(
    image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor, text_to_image_weight: float = 0.75
) -> torch.Tensor:
    """Rows of ``logits`` are texts, columns images; pair i is the positive for row and column i."""
    logits = scale * text @ image.T
    targets = torch.arange(len(logits), device=logits.device)
    text_to_image = F.cross_entropy(logits, targets)
    image_to_text = F.cross_entropy(logits.T, targets)
    return text_to_image_weight * text_to_image + (1 - text_to_image_weight) * image_to_text


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float) -> torch.Tensor:
    """``torchvision.ops.sigmoid_focal_loss(logits, targets, alpha=-1, gamma=gamma, reduction="mean")``,
    the same operations in the same order (a test holds them equal): importing torchvision costs a
    segmentation job 2.5 s, and with it torch._dynamo, for four lines."""
    p = torch.sigmoid(logits)
    cross_entropy = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    return (cross_entropy * ((1 - p_t) ** gamma)).mean()


# The share of positive pixels a segmentation decoder predicts before training (focal loss's prior,
# Lin et al. 2017): its last bias starts at log(0.01 / 0.99).
EMPTY_PRIOR = 0.01


def start_near_empty(head: nn.Conv2d, prior: float = EMPTY_PRIOR) -> nn.Conv2d:
    """Set a decoder's last convolution's bias so that, untrained, it predicts ``prior`` everywhere.

    Why: at bias 0 every pixel starts at probability 0.5, above the 0.5 threshold half the time, and a
    decoder that trained a few steps (a 1 % label fraction) fills the masks of negative images and
    scores far below the all-empty predictor. Starting near empty, too little training leaves it
    there instead, and the focal loss's first steps are not spent on the background.
    """
    if head.bias is None:
        raise ValueError("a decoder's last convolution needs a bias to start near empty masks")
    nn.init.constant_(head.bias, math.log(prior / (1 - prior)))
    return head


def segmentation_loss(
    logits: torch.Tensor, masks: torch.Tensor, focal_weight: float = 10.0, gamma: float = 2.0
) -> torch.Tensor:
    """The reference's (MGCA's) mixed loss: ``focal_weight`` x focal(gamma) - log(soft Dice).

    Focal loss without class weighting (alpha off), averaged over pixels; soft Dice over the whole
    batch with smoothing 1, so a batch without any positive pixel still has a finite loss.
    """
    focal = sigmoid_focal_loss(logits, masks, gamma)
    probabilities = logits.sigmoid().flatten()
    targets = masks.flatten()
    dice = (2 * (probabilities * targets).sum() + 1) / (probabilities.sum() + targets.sum() + 1)
    return focal_weight * focal - dice.log()
