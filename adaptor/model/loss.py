"""The paper's asymmetric InfoNCE: 0.75 text->image + 0.25 image->text."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def contrastive_loss(
    image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor, text_to_image_weight: float = 0.75
) -> torch.Tensor:
    """Rows of ``logits`` are texts, columns images; pair i is the positive for row and column i."""
    logits = scale * text @ image.T
    targets = torch.arange(len(logits), device=logits.device)
    text_to_image = F.cross_entropy(logits, targets)
    image_to_text = F.cross_entropy(logits.T, targets)
    return text_to_image_weight * text_to_image + (1 - text_to_image_weight) * image_to_text
