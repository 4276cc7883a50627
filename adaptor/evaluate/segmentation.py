"""Segmentation on frozen features: a decoder trained per (dataset, method, fraction, seed).

The conv decoder reads a ViT's patch tokens (through the Adaptor's token path, for the Adaptor
methods); the U-Net reads a CNN's stage maps, with the Adaptor's vector at its bottleneck
(:mod:`adaptor.evaluate.decoder_inputs` picks them). The encoder ran once into a cache; here only
the decoder trains. Selection is on the validation loss, the objective itself: selecting
on MGCA's Dice would favour predicting nothing, selecting on positive-only Dice would favour
predicting everywhere. The test set is scored once, with all three Dice figures side by side.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import polars as pl
import torch
from torch import nn

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
from adaptor.model.unet import DEFAULT_WIDTHS, UNetDecoder

log = logging.getLogger(__name__)

DECODERS = ("conv", "unet")


class Rows(Protocol):
    """A split's model inputs, read a batch of samples at a time: [tokens [n, T, D]] for the conv
    decoder; [stage maps [n, C_k, H_k, W_k] ..., Adaptor vectors [n, A] (the Adaptor methods only)]
    for the U-Net."""

    def __len__(self) -> int: ...

    def take(self, index: np.ndarray | slice) -> list[np.ndarray]: ...


@dataclass(frozen=True)
class Held:
    """Inputs held in memory, one array per input, aligned on samples."""

    arrays: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.arrays[0])

    def take(self, index: np.ndarray | slice) -> list[np.ndarray]:
        return [array[index] for array in self.arrays]


@dataclass(frozen=True)
class Streamed:
    """Inputs produced batch by batch by ``read(ids)`` (a frozen encoder run on each batch, when
    holding every sample's stage maps would not fit in memory)."""

    ids: np.ndarray
    read: Callable[[list[str]], list[np.ndarray]]

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, index: np.ndarray | slice) -> list[np.ndarray]:
        return self.read(self.ids[index].tolist())


# A split's inputs and its masks [n, S, S].
Arrays = tuple[Rows, np.ndarray]


@dataclass(frozen=True)
class DecoderSettings:
    """The reference's recipe: AdamW lr 5e-4, wd 1e-4, batch 4; 10 x focal(gamma 2) - log Dice.

    ``kind``: the decoder (``auto``: the U-Net for a CNN, the conv decoder for a ViT).
    ``channels``: the conv decoder's widths, the first conv's then each upsampling stage's (the
    reference's by default; the CPU demo narrows them). ``unet_widths``: the U-Net's, its
    bottleneck's then each climb's, one per encoder stage.
    """

    lr: float = 5e-4
    weight_decay: float = 1e-4
    batch_size: int = 4
    max_epochs: int = 100
    patience: int = 10
    focal_weight: float = 10.0
    focal_gamma: float = 2.0
    channels: tuple[int, ...] = PAPER_CHANNELS
    unet_widths: tuple[int, ...] = DEFAULT_WIDTHS
    kind: str = "auto"

    @classmethod
    def from_config(cls, entry: dict[str, Any]) -> DecoderSettings:
        """From the config's decoder entry (its keys are this class's fields; lists become tuples)."""
        widths: dict[str, Any] = {
            key: tuple(entry[key]) for key in ("channels", "unet_widths") if key in entry
        }
        return cls(**entry | widths)


@dataclass(frozen=True)
class Decoder:
    """Which decoder a cell trains, and so what it reads: ``conv`` the token grid (ViTs), ``unet``
    the stage maps (CNNs), with the Adaptor's vector at the bottleneck when ``adaptor``."""

    kind: str = "conv"
    adaptor: bool = False

    def __post_init__(self) -> None:
        if self.kind not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {self.kind!r}")

    def build(self, inputs: Rows, settings: DecoderSettings) -> nn.Module:
        first = inputs.take(slice(0, 1))
        if self.kind == "conv":
            return TokenGridDecoder(first[0].shape[2], settings.channels)
        stages = first[:-1] if self.adaptor else first
        adaptor_dim = first[-1].shape[1] if self.adaptor else None
        return UNetDecoder(tuple(stage.shape[1] for stage in stages), adaptor_dim, settings.unet_widths)

    def logits(self, decoder: nn.Module, inputs: list[torch.Tensor], size: int) -> torch.Tensor:
        if self.kind == "conv":
            return decoder(inputs[0], size)  # type: ignore[no-any-return]
        if self.adaptor:
            return decoder(inputs[:-1], size, inputs[-1])  # type: ignore[no-any-return]
        return decoder(inputs, size)  # type: ignore[no-any-return]


def _rows(inputs: Rows, index: np.ndarray | slice, device: torch.device) -> list[torch.Tensor]:
    return [torch.as_tensor(array).float().to(device) for array in inputs.take(index)]


def _logits(
    decoder: nn.Module, kind: Decoder, inputs: Rows, size: int, device: torch.device, batch: int = 64
) -> torch.Tensor:
    """Logits [N, S, S] on the CPU, computed batch by batch on ``device``."""
    decoder.eval()
    n = len(inputs)
    with torch.no_grad():
        return torch.cat(
            [
                kind.logits(decoder, _rows(inputs, slice(i, i + batch), device), size).cpu()
                for i in range(0, n, batch)
            ]
        )


def train_and_test(
    train: Arrays,
    val: Arrays,
    test: Arrays,
    settings: DecoderSettings,
    seed: int,
    device: torch.device = CPU,
    kind: Decoder = Decoder(),
) -> dict[str, Any]:
    """Fit the decoder on ``train`` (inputs, masks [N, S, S]) on ``device``, batches moved there as
    they are drawn; keep the epoch with the lowest validation loss; return test probabilities
    [N, S, S] from that epoch."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    inputs, masks = train[0], torch.from_numpy(train[1]).float()
    size = masks.shape[-1]
    decoder = kind.build(inputs, settings).to(device)
    parameters = sum(p.numel() for p in decoder.parameters())
    log.info(
        "%s decoder%s: %s trainable parameters",
        kind.kind,
        " + Adaptor vector" * kind.adaptor,
        f"{parameters:,}",
    )
    optimiser = AdamW(decoder.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)

    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return segmentation_loss(logits, target, settings.focal_weight, settings.focal_gamma)

    val_masks = torch.from_numpy(val[1]).float()

    def batch_loss(index: torch.Tensor) -> torch.Tensor:
        return loss(kind.logits(decoder, _rows(inputs, index.numpy(), device), size), masks[index].to(device))

    def validate() -> float:  # the validation loss, negated: higher is better
        with torch.no_grad():
            return -float(loss(_logits(decoder, kind, val[0], size, device), val_masks))

    fit = fit_selecting_on_validation(
        decoder,
        optimiser,
        batch_loss,
        validate,
        len(masks),
        settings.batch_size,
        settings.max_epochs,
        settings.patience,
        generator,
    )
    return {
        "test_probabilities": _logits(decoder, kind, test[0], size, device).sigmoid().numpy(),
        "val_loss": -fit["best_value"],
        "best_epoch": fit["best_epoch"],
        "epochs_run": fit["epochs_run"],
        "decoder_parameters": parameters,
    }


def segment_cell(
    manifest: pl.DataFrame,
    info: ManifestInfo,
    inputs: Callable[[list[str]], Rows],
    masks: Callable[[pl.DataFrame], np.ndarray],
    subsets: pl.DataFrame,
    fraction: float,
    seed: int,
    settings: DecoderSettings,
    labels: dict[str, object],
    device: torch.device = CPU,
    kind: Decoder = Decoder(),
) -> pl.DataFrame:
    """Train a decoder on the subset's inputs and masks, test once, report Dice three ways.

    ``inputs(ids)`` gives the decoder's inputs for those samples (:func:`token_grid`,
    :func:`stage_maps`); ``masks(frame)`` the masks [n, S, S] in the encoder's input geometry; the
    decoder trains on ``device``.

    A result whose MGCA Dice does not exceed the all-empty predictor's is flagged
    (``beats_empty_predictor`` false on every row of the cell).
    """
    started = time.perf_counter()
    cell = CellData.select(manifest, subsets, fraction, seed)

    def arrays(frame: pl.DataFrame) -> Arrays:
        return inputs(frame["id"].to_list()), masks(frame)

    test = arrays(cell.test)
    result = train_and_test(arrays(cell.train), arrays(cell.val), test, settings, seed, device, kind)
    metrics = dice_with_intervals(result["test_probabilities"], test[1], seed=seed)
    columns = {
        "dataset": info.dataset,
        "task": "segmentation",
        **labels,
        "decoder": kind.kind,
        "decoder_parameters": result["decoder_parameters"],
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
