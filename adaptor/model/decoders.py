"""The segmentation decoder of the reference (section 5): a token grid upsampled to a mask."""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from adaptor.model.loss import start_near_empty

# conv3x3-BN-ReLU to 768, then four conv3x3-BN-ReLU-upsample x2 stages: 10,401,409 trainable at 768 in.
PAPER_CHANNELS = (768, 512, 256, 128, 64)


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU()]


class TokenGridDecoder(nn.Module):
    """[B, T, D] tokens of a square grid -> [B, size, size] mask logits.

    Each stage doubles the grid (16x over four stages); the last logits are resized bilinearly to
    the mask size, which need not be a multiple of the grid (a 16 x 16 ViT grid at 224 px).
    """

    def __init__(self, in_dim: int, channels: tuple[int, ...] = PAPER_CHANNELS) -> None:
        super().__init__()
        layers = _conv_bn_relu(in_dim, channels[0])
        for previous, current in itertools.pairwise(channels):
            layers += [*_conv_bn_relu(previous, current), nn.Upsample(scale_factor=2, mode="bilinear")]
        layers.append(start_near_empty(nn.Conv2d(channels[-1], 1, 3, padding=1)))
        self.layers = nn.Sequential(*layers)

    def forward(self, tokens: torch.Tensor, size: int) -> torch.Tensor:
        batch, count, dim = tokens.shape
        side = math.isqrt(count)
        if side * side != count:
            raise ValueError(f"{count} tokens do not form a square grid")
        grid = tokens.transpose(1, 2).reshape(batch, dim, side, side)
        logits: torch.Tensor = self.layers(grid)
        if logits.shape[-1] != size:
            logits = F.interpolate(logits, size=(size, size), mode="bilinear", align_corners=False)
        return logits[:, 0]
