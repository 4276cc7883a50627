"""The Adaptor: the published pooled mode (section 2 of the method reference) and a token mode.

Pooled mode is exactly the paper: every sequence has length 1, so softmax over a single key is 1
and the attention output does not depend on the query. There is no cross-modal fusion in this mode,
and W_q, W_k receive no gradient; the layers act as shared residual MLP blocks.

Token mode (an extension, not the published method) feeds image patch tokens and text token states,
each behind a learned summary token, through the same shared layers as self-attention over each
modality's own tokens (padding masked): attention is real, its queries matter, and the summary
tokens give the pooled outputs. It deliberately does not condition an image on its paired report:
with in-batch negatives that leaks the answer (a model can match the text inside each image
embedding to the text embeddings), and scoring every image-report pair of a batch jointly costs B^2
forwards per step. The downstream image path is the same self-attention the training used.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

MODES = ("pooled", "tokens")
WEIGHTS = "weights.safetensors"  # a trained Adaptor's folder: these weights beside config.json


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
    mode: str = "pooled"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"adaptor mode must be one of {MODES}, got {self.mode!r}")
        if self.width % self.heads:
            raise ValueError(
                f"pretrain.architecture: width {self.width} does not split into {self.heads} heads"
                " (width must be a multiple of heads)"
            )

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
        """The published wiring: ``source`` updated by attention with the other modality as query."""
        attended, _ = self.attention(query, source, source, need_weights=False)
        return self._finish(source, attended)

    def attend(self, tokens: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
        """Token mode: self-attention over a sequence (True in ``padding`` = a key to ignore)."""
        attended, _ = self.attention(tokens, tokens, tokens, key_padding_mask=padding, need_weights=False)
        return self._finish(tokens, attended)

    def _finish(self, residual: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        x = self.norm1(residual + self.dropout1(attended))
        out: torch.Tensor = self.norm2(x + self.dropout2(self.feed_forward(x)))
        return out


class Adaptor(nn.Module):
    """Projections + shared layers + learnable temperature, on pooled vectors or on token sequences."""

    def __init__(self, config: AdaptorConfig) -> None:
        super().__init__()
        self.config = config
        self.image_projection = nn.Linear(config.image_dim, config.width, bias=False)
        self.text_projection = nn.Linear(config.text_dim, config.width, bias=False)
        self.layers = nn.ModuleList(
            CrossLayer(config.width, config.heads, config.ffn, config.dropout) for _ in range(config.layers)
        )
        self.logit_scale = nn.Parameter(torch.tensor(config.logit_scale_init))
        if config.mode == "tokens":
            self.image_summary = nn.Parameter(torch.randn(config.width) * 0.02)
            self.text_summary = nn.Parameter(torch.randn(config.width) * 0.02)

    def forward(
        self,
        image: torch.Tensor,
        text: torch.Tensor,
        image_mask: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Aligned, L2-normalised image and text embeddings.

        Pooled mode takes [B, D_img] and [B, D_txt]; token mode [B, T, D] sequences with optional
        [B, T] masks (True = a real token).
        """
        if self.config.mode == "pooled":
            image = F.normalize(self.image_projection(image), dim=-1).unsqueeze(1)
            text = F.normalize(self.text_projection(text), dim=-1).unsqueeze(1)
            for layer in self.layers:
                image = layer(source=image, query=text)
                text = layer(source=text, query=image)
            return F.normalize(image[:, 0], dim=-1), F.normalize(text[:, 0], dim=-1)
        return self.encode_image(image, image_mask), self.encode_text(text, text_mask)

    def _sequence(
        self, tokens: torch.Tensor, mask: torch.Tensor | None, projection: nn.Linear, summary: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected, L2-normalised tokens behind a learned summary token, and their padding mask."""
        batch = tokens.shape[0]
        x = F.normalize(projection(tokens), dim=-1)
        x = torch.cat([summary.expand(batch, 1, -1), x], dim=1)
        if mask is None:
            mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        padding = torch.cat([torch.zeros(batch, 1, dtype=torch.bool, device=x.device), ~mask.bool()], dim=1)
        return x, padding

    def encode_image(self, image: torch.Tensor, image_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Downstream image path: the same layers as self-attention over the image alone, no text."""
        return self._alone(image, image_mask, "image")

    def encode_text(self, text: torch.Tensor, text_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Text path alone (e.g. zero-shot prompts): self-attention over the text, no image."""
        return self._alone(text, text_mask, "text")

    def encode_image_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Segmentation's image path: [B, T, D_img] patch tokens -> [B, T, width], one per patch.

        The layers run as self-attention over the patch tokens (the reference's downstream use); in
        token mode the learned summary token joins the sequence as in training and is dropped after.
        """
        x = F.normalize(self.image_projection(tokens), dim=-1)
        padding = None
        if self.config.mode == "tokens":
            x, padding = self._sequence(tokens, None, self.image_projection, self.image_summary)
        for layer in self.layers:
            x = cast(CrossLayer, layer).attend(x, padding)
        return x[:, 1:] if self.config.mode == "tokens" else x

    def _alone(self, inputs: torch.Tensor, mask: torch.Tensor | None, modality: str) -> torch.Tensor:
        projection = getattr(self, f"{modality}_projection")
        if self.config.mode == "pooled":
            x = F.normalize(projection(inputs), dim=-1).unsqueeze(1)
            for layer in self.layers:
                x = layer(source=x, query=x)
            return F.normalize(x[:, 0], dim=-1)
        x, padding = self._sequence(inputs, mask, projection, getattr(self, f"{modality}_summary"))
        for layer in self.layers:
            x = cast(CrossLayer, layer).attend(x, padding)
        return F.normalize(x[:, 0], dim=-1)

    def scale(self) -> torch.Tensor:
        """exp(s), clamped at ``logit_scale_max`` as CLIP does (None keeps the original's no clamp)."""
        scale = self.logit_scale.exp()
        return scale.clamp(max=self.config.logit_scale_max) if self.config.logit_scale_max else scale


def count_parameters(module: nn.Module, trainable: bool = True) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad == trainable)


def load_adaptor(directory: str | Path) -> Adaptor:
    """Load a trained Adaptor (safetensors weights + JSON config) in eval mode."""
    from safetensors.torch import load_file

    directory = Path(directory)
    config = AdaptorConfig(**json.loads((directory / "config.json").read_text()))
    model = Adaptor(config)
    model.load_state_dict(load_file(directory / WEIGHTS))
    return model.eval()
