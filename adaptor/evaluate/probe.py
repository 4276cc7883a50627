"""Train a head on frozen features with early stopping on the validation metric; test once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from adaptor.devices import CPU
from adaptor.evaluate.adamw import AdamW
from adaptor.evaluate.fit import fit_selecting_on_validation
from adaptor.evaluate.metrics import classification_metrics, primary_metric
from adaptor.model.heads import make_head


@dataclass(frozen=True)
class HeadSettings:
    head: str = "mlp"
    lr: float = 5e-4
    weight_decay: float = 1e-4
    batch_size: int = 128
    max_epochs: int = 100
    patience: int = 10


def _outputs(task: str, n_classes: int) -> int:
    return n_classes if task in ("multiclass", "multilabel") else 1


def _loss(task: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Cross-entropy for one class of several; otherwise binary cross-entropy over the known labels,
    so a label the dataset says to ignore (NaN, e.g. CheXpert's uncertain under ``ignore``) adds
    nothing to the loss or its gradient."""
    if task == "multiclass":
        return nn.CrossEntropyLoss()

    def masked_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        known = ~targets.isnan()
        losses = nn.functional.binary_cross_entropy_with_logits(
            logits, targets.nan_to_num(0.0), reduction="none"
        )
        return (losses * known).sum() / known.sum().clamp(min=1)

    return masked_bce


def _scores(task: str, head: nn.Module, features: torch.Tensor) -> np.ndarray:
    head.eval()
    with torch.no_grad():
        logits = head(features)
    return np.asarray((logits.softmax(-1) if task == "multiclass" else logits.sigmoid()).cpu().numpy())


def _targets(task: str, labels: torch.Tensor) -> torch.Tensor:
    return labels[:, 0].long() if task == "multiclass" else labels


def train_and_test(
    task: str,
    classes: tuple[str, ...],
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    settings: HeadSettings,
    seed: int,
    device: torch.device = CPU,
) -> dict[str, Any]:
    """Fit on ``train``, select the epoch by the validation metric, evaluate ``test`` once; on
    ``device`` (the features of a cell fit in a GPU's memory whole)."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    train_x, train_y = (torch.from_numpy(a).float().to(device) for a in train)
    val_x, val_y = (torch.from_numpy(a).float().to(device) for a in val)
    head = make_head(settings.head, train_x.shape[1], _outputs(task, len(classes))).to(device)
    optimiser = AdamW(head.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    criterion = _loss(task)
    metric = primary_metric(task)

    def batch_loss(index: torch.Tensor) -> torch.Tensor | None:
        if len(index) < 2 and settings.head == "mlp":
            return None  # BatchNorm needs two samples
        return criterion(head(train_x[index]), _targets(task, train_y[index]))

    def validate() -> float:
        value = classification_metrics(task, val[1], _scores(task, head, val_x), classes)[metric]
        if np.isnan(value):  # a validation set with one class: select on its loss instead
            with torch.no_grad():
                value = -float(criterion(head(val_x), _targets(task, val_y)))
        return value

    fit = fit_selecting_on_validation(
        head,
        optimiser,
        batch_loss,
        validate,
        len(train_x),
        settings.batch_size,
        settings.max_epochs,
        settings.patience,
        generator,
    )
    test_scores = _scores(task, head, torch.from_numpy(test[0]).float().to(device))
    return {
        "test_scores": test_scores,
        "val_metric": fit["best_value"],
        "best_epoch": fit["best_epoch"],
        "epochs_run": fit["epochs_run"],
    }
