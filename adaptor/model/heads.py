"""Downstream classification heads trained on frozen features."""

from __future__ import annotations

from torch import nn


def make_head(kind: str, in_dim: int, n_outputs: int, hidden: int = 512, dropout: float = 0.1) -> nn.Module:
    """``linear`` (the MGCA-style probe) or ``mlp`` (the paper's head, section 5 of the reference)."""
    if kind == "linear":
        return nn.Linear(in_dim, n_outputs)
    if kind == "mlp":
        return nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(in_dim, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_outputs),
        )
    raise ValueError(f"unknown head {kind!r}: linear or mlp")
