"""The Adaptor exactly as published (section 2 of the method reference), pooled mode.

Note what the paper's design does: every sequence has length 1, so softmax over a single key is 1
and the attention output does not depend on the query. There is no cross-modal fusion in this
mode, and W_q, W_k receive no gradient; the layers act as shared residual MLP blocks.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class AdaptorConfig:
    """Architecture settings; the defaults are the paper's."""

    image_dim: int
    text_dim: int
    width: int = 768
    layers: int = 2
    heads: int = 12
    ffn: int = 2048
    dropout: float = 0.1
    logit_scale_init: float = math.log(1 / 0.07)
    logit_scale_max: float | None = 100.0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class CrossLayer(nn.Module):
    """Post-LN transformer layer whose attention takes its query from another sequence."""

    def __init__(self, width: int, heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.feed_forward = nn.Sequential(
            nn.Linear(width, ffn), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn, width)
        )
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, source: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        attended, _ = self.attention(query, source, source, need_weights=False)
        x = self.norm1(source + self.dropout1(attended))
        return self.norm2(x + self.dropout2(self.feed_forward(x)))


class Adaptor(nn.Module):
    """Projections + shared cross layers + learnable temperature, on pooled embeddings."""

    def __init__(self, config: AdaptorConfig) -> None:
        super().__init__()
        self.config = config
        self.image_projection = nn.Linear(config.image_dim, config.width, bias=False)
        self.text_projection = nn.Linear(config.text_dim, config.width, bias=False)
        self.layers = nn.ModuleList(
            CrossLayer(config.width, config.heads, config.ffn, config.dropout) for _ in range(config.layers)
        )
        self.logit_scale = nn.Parameter(torch.tensor(config.logit_scale_init))

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Aligned, L2-normalised image and text embeddings for [B, D_img] and [B, D_txt] inputs."""
        image = F.normalize(self.image_projection(image), dim=-1).unsqueeze(1)
        text = F.normalize(self.text_projection(text), dim=-1).unsqueeze(1)
        for layer in self.layers:
            image = layer(source=image, query=text)
            text = layer(source=text, query=image)
        return F.normalize(image[:, 0], dim=-1), F.normalize(text[:, 0], dim=-1)

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """Downstream image path: the same layers as self-attention, no text."""
        x = F.normalize(self.image_projection(image), dim=-1).unsqueeze(1)
        for layer in self.layers:
            x = layer(source=x, query=x)
        return F.normalize(x[:, 0], dim=-1)

    def scale(self) -> torch.Tensor:
        """exp(s), clamped at ``logit_scale_max`` as CLIP does (None keeps the original's no clamp)."""
        scale = self.logit_scale.exp()
        return scale.clamp(max=self.config.logit_scale_max) if self.config.logit_scale_max else scale


def count_parameters(module: nn.Module, trainable: bool = True) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad == trainable)
