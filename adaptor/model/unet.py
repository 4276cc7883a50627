"""The reference's CNN segmentation decoder (section 5): a U-Net over a frozen CNN encoder's stages,
with the Adaptor's pooled image vector at the bottleneck.

A CNN's last feature map is coarse (EfficientNet-Lite0 at 128 px: 4 x 4), so upsampling it alone, as
the ViT decoder does with its token grid, loses the edges of small findings. The U-Net climbs back
through every stage's map instead, each joined by a skip connection. At the bottom the Adaptor's
vector, broadcast over the deepest map and concatenated to it, brings in what pre-training learned;
the ``frozen`` method, which has no Adaptor, runs the same network without it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from adaptor.model.loss import start_near_empty

# Widths of the bottleneck and of each climb back up: deepest first, one per stage.
DEFAULT_WIDTHS = (256, 128, 64, 32, 16)


def _conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    )


class UNetDecoder(nn.Module):
    """Stage maps (shallowest first, each [B, C_i, H_i, W_i], each about twice the next one's size)
    and an optional Adaptor vector [B, A] -> mask logits [B, size, size]."""

    def __init__(
        self,
        stage_channels: tuple[int, ...],
        adaptor_dim: int | None = None,
        widths: tuple[int, ...] = DEFAULT_WIDTHS,
    ) -> None:
        super().__init__()
        if len(widths) != len(stage_channels):
            raise ValueError(
                f"the U-Net needs one width per encoder stage: {len(stage_channels)} stages "
                f"{stage_channels}, {len(widths)} widths {widths}"
            )
        self.adaptor_dim = adaptor_dim
        deepest = stage_channels[-1] + (adaptor_dim or 0)
        self.bottleneck = nn.Sequential(
            _conv_bn_relu(deepest, widths[0]), _conv_bn_relu(widths[0], widths[0])
        )
        skips = stage_channels[-2::-1]  # from the second deepest up to the shallowest
        self.climbs = nn.ModuleList(
            nn.Sequential(_conv_bn_relu(below + skip, width), _conv_bn_relu(width, width))
            for below, skip, width in zip(widths[:-1], skips, widths[1:], strict=True)
        )
        self.head = start_near_empty(nn.Conv2d(widths[-1], 1, 1))

    def forward(
        self, stages: list[torch.Tensor], size: int, adaptor: torch.Tensor | None = None
    ) -> torch.Tensor:
        if (adaptor is None) != (self.adaptor_dim is None):
            raise ValueError(
                "this U-Net was built "
                + ("with" if self.adaptor_dim else "without")
                + " an Adaptor vector at its bottleneck; give it one exactly then"
            )
        deepest = stages[-1]
        if adaptor is not None:
            broadcast = adaptor[:, :, None, None].expand(-1, -1, *deepest.shape[-2:])
            deepest = torch.cat([deepest, broadcast.to(deepest.dtype)], dim=1)
        x = self.bottleneck(deepest)
        for climb, skip in zip(self.climbs, stages[-2::-1], strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = climb(torch.cat([x, skip], dim=1))
        logits = F.interpolate(self.head(x), size=(size, size), mode="bilinear", align_corners=False)
        return logits[:, 0]
