"""The training loop every downstream head shares: shuffled mini-batches, model selection on the
validation split, early stopping. Heads differ only in their batch loss and validation score."""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from adaptor.evaluate.adamw import AdamW


def fit_selecting_on_validation(
    model: nn.Module,
    optimiser: AdamW,
    batch_loss: Callable[[torch.Tensor], torch.Tensor | None],
    validate: Callable[[], float],
    n_train: int,
    batch_size: int,
    max_epochs: int,
    patience: int,
    generator: torch.Generator,
) -> dict[str, float | int]:
    """Train, keep the weights of the epoch with the highest ``validate()``, load them back.

    ``batch_loss(index)`` gives the loss of the training rows ``index`` (None skips the batch);
    training stops ``patience`` epochs after the last improvement.
    """
    best_value, best_epoch, best_state = -np.inf, -1, copy.deepcopy(model.state_dict())
    for epoch in range(max_epochs):
        model.train()
        order = torch.randperm(n_train, generator=generator)
        for start in range(0, len(order), batch_size):
            loss = batch_loss(order[start : start + batch_size])
            if loss is None:
                continue
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        value = validate()
        if value > best_value:
            best_value, best_epoch, best_state = value, epoch, copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= patience:
            break
    model.load_state_dict(best_state)
    return {"best_value": float(best_value), "best_epoch": best_epoch, "epochs_run": epoch + 1}
