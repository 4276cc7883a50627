"""Segmentation on cached patch tokens: a decoder trained per (dataset, method, fraction, seed).

The encoder (and the Adaptor's token path, for the Adaptor methods) ran once into a token cache;
here only the decoder trains. Selection is on the validation loss, the objective itself: selecting
on MGCA's Dice would favour predicting nothing, selecting on positive-only Dice would favour
predicting everywhere. The test set is scored once, with all three Dice figures side by side.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import torch

from adaptor.cache.store import Cache
from adaptor.data.manifest import ManifestInfo
from adaptor.devices import CPU
from adaptor.evaluate.adamw import AdamW
from adaptor.evaluate.fit import fit_selecting_on_validation
from adaptor.evaluate.fractions import subset_hash
from adaptor.evaluate.metrics import dice_with_intervals
from adaptor.evaluate.run import result_rows
from adaptor.evaluate.subsets import CellData
from adaptor.model.decoders import PAPER_CHANNELS, TokenGridDecoder
from adaptor.model.loss import segmentation_loss

Arrays = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class DecoderSettings:
    """The reference's recipe: AdamW lr 5e-4, wd 1e-4, batch 4; 10 x focal(gamma 2) - log Dice.

    ``channels``: the decoder's widths, the first conv's then each upsampling stage's (the
    reference's by default; the CPU demo narrows them).
    """

    lr: float = 5e-4
    weight_decay: float = 1e-4
    batch_size: int = 4
    max_epochs: int = 100
    patience: int = 10
    focal_weight: float = 10.0
    focal_gamma: float = 2.0
    channels: tuple[int, ...] = PAPER_CHANNELS

    @classmethod
    def from_config(cls, entry: dict[str, Any]) -> DecoderSettings:
        """From the config's decoder entry (its keys are this class's fields; lists become tuples)."""
        return cls(**entry | ({"channels": tuple(entry["channels"])} if "channels" in entry else {}))


def _logits(
    decoder: TokenGridDecoder, tokens: np.ndarray, size: int, device: torch.device, batch: int = 64
) -> torch.Tensor:
    """Logits [N, S, S] on the CPU, computed batch by batch on ``device``."""
    decoder.eval()
    with torch.no_grad():
        return torch.cat(
            [
                decoder(torch.from_numpy(tokens[i : i + batch]).to(device), size).cpu()
                for i in range(0, len(tokens), batch)
            ]
        )


def train_and_test(
    train: Arrays,
    val: Arrays,
    test: Arrays,
    settings: DecoderSettings,
    seed: int,
    device: torch.device = CPU,
) -> dict[str, Any]:
    """Fit the decoder on ``train`` (tokens [N, T, D], masks [N, S, S]) on ``device``, batches moved
    there as they are drawn; keep the epoch with the lowest validation loss; return test
    probabilities [N, S, S] from that epoch."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    tokens, masks = torch.from_numpy(train[0]), torch.from_numpy(train[1]).float()
    size = masks.shape[-1]
    decoder = TokenGridDecoder(tokens.shape[2], settings.channels).to(device)
    optimiser = AdamW(decoder.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)

    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return segmentation_loss(logits, target, settings.focal_weight, settings.focal_gamma)

    val_masks = torch.from_numpy(val[1]).float()

    def batch_loss(index: torch.Tensor) -> torch.Tensor:
        return loss(decoder(tokens[index].to(device), size), masks[index].to(device))

    def validate() -> float:  # the validation loss, negated: higher is better
        with torch.no_grad():
            return -float(loss(_logits(decoder, val[0], size, device), val_masks))

    fit = fit_selecting_on_validation(
        decoder,
        optimiser,
        batch_loss,
        validate,
        len(tokens),
        settings.batch_size,
        settings.max_epochs,
        settings.patience,
        generator,
    )
    return {
        "test_probabilities": _logits(decoder, test[0], size, device).sigmoid().numpy(),
        "val_loss": -fit["best_value"],
        "best_epoch": fit["best_epoch"],
        "epochs_run": fit["epochs_run"],
    }


def segment_cell(
    manifest: pl.DataFrame,
    info: ManifestInfo,
    features: Cache,
    masks: Callable[[pl.DataFrame], np.ndarray],
    subsets: pl.DataFrame,
    fraction: float,
    seed: int,
    settings: DecoderSettings,
    labels: dict[str, object],
    device: torch.device = CPU,
) -> pl.DataFrame:
    """Train a decoder on the subset's token grids and masks, test once, report Dice three ways.

    ``masks(frame)`` gives the masks [n, S, S] of a frame's samples in the encoder's input geometry;
    the decoder trains on ``device``.

    A result whose MGCA Dice does not exceed the all-empty predictor's is flagged
    (``beats_empty_predictor`` false on every row of the cell).
    """
    started = time.perf_counter()
    cell = CellData.select(manifest, subsets, fraction, seed)

    def arrays(frame: pl.DataFrame) -> Arrays:
        tokens, _ = features.tokens(frame["id"].to_list())
        return tokens, masks(frame)

    test = arrays(cell.test)
    result = train_and_test(arrays(cell.train), arrays(cell.val), test, settings, seed, device)
    metrics = dice_with_intervals(result["test_probabilities"], test[1], seed=seed)
    columns = {
        "dataset": info.dataset,
        "task": "segmentation",
        **labels,
        "fraction": fraction,
        "seed": seed,
        "n_train": len(cell.train),
        "n_test": len(cell.test),
        "n_test_positive": int((test[1].reshape(len(test[1]), -1).any(1)).sum()),
        "val_loss": result["val_loss"],
        "epochs_run": result["epochs_run"],
        "beats_empty_predictor": metrics["dice_mgca"][0] > metrics["dice_empty_predictor"][0],
        "protocol": cell.protocol,
        "subset_sha256": subset_hash(cell.subset_ids),
    }
    return result_rows(columns, metrics, started)
