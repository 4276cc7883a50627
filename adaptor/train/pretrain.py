"""Train the Adaptor from the embedding caches alone: no encoder runs here.

Arrays are loaded once; a batch is an index slice of a per-epoch permutation (reshuffled every
epoch, unlike the original). Image and text rows are joined by sample id, never by position.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch
from safetensors.torch import save_file

from adaptor.cache.store import Cache, join, usable
from adaptor.model.adaptor import Adaptor, AdaptorConfig, count_parameters
from adaptor.model.loss import contrastive_loss

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainSettings:
    """The recipe; defaults are the paper's (section 4 of the reference)."""

    epochs: int = 50
    batch_size: int = 1024
    lr: float = 2e-5
    weight_decay: float = 0.01
    warmup_fraction: float = 0.02
    patience: int = 10
    seed: int = 42
    text_to_image_weight: float = 0.75
    logit_scale_max: float | None = 100.0


def linear_warmup_decay(total_steps: int, warmup_fraction: float):
    """LR multiplier: linear warm-up over ``warmup_fraction`` of the real steps, then linear decay to 0."""
    warmup = max(1, math.ceil(warmup_fraction * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


def _batches(n: int, batch_size: int, generator: torch.Generator | None) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    # A trailing batch of one sample has no negatives; fold it into the previous batch instead.
    cuts = list(range(0, n, batch_size))
    if len(cuts) > 1 and n - cuts[-1] < 2:
        cuts.pop()
    return [order[start:end] for start, end in zip(cuts, [*cuts[1:], n], strict=True)]


def _mean_loss(model: Adaptor, image: torch.Tensor, text: torch.Tensor, settings: PretrainSettings) -> float:
    model.eval()
    total = 0.0
    with torch.no_grad():
        for index in _batches(len(image), settings.batch_size, None):
            out_image, out_text = model(image[index], text[index])
            total += contrastive_loss(
                out_image, out_text, model.scale(), settings.text_to_image_weight
            ).item() * len(index)
    return total / len(image)


def pretrain(
    manifest: pl.DataFrame,
    image_cache: Cache,
    text_cache: Cache,
    settings: PretrainSettings,
    out_dir: str | Path,
) -> dict[str, object]:
    """Train, keep the checkpoint with the lowest validation loss, and return the run's metrics."""
    started = time.perf_counter()
    torch.manual_seed(settings.seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    splits = {}
    for split in ("train", "val"):
        listed = manifest.filter(pl.col("split") == split)["id"].to_list()
        ids = usable(listed, image_cache, text_cache)
        if len(ids) < len(listed):
            dropped = len(listed) - len(ids)
            log.warning("%s: %d of %d pairs rejected at embedding, left out", split, dropped, len(listed))
        if len(ids) < 2:
            raise ValueError(f"pre-training needs at least 2 {split} pairs, found {len(ids)}")
        image, text = join(image_cache, text_cache, ids)
        splits[split] = (torch.from_numpy(image).to(device), torch.from_numpy(text).to(device))
    train_image, train_text = splits["train"]
    config = AdaptorConfig(
        image_dim=train_image.shape[1],
        text_dim=train_text.shape[1],
        logit_scale_max=settings.logit_scale_max,
    )
    model = Adaptor(config).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    steps_per_epoch = len(_batches(len(train_image), settings.batch_size, None))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, linear_warmup_decay(settings.epochs * steps_per_epoch, settings.warmup_fraction)
    )
    generator = torch.Generator().manual_seed(settings.seed)
    history: list[dict[str, float]] = []
    best_loss, best_epoch, train_seconds = float("inf"), -1, 0.0
    for epoch in range(settings.epochs):
        epoch_start = time.perf_counter()
        model.train()
        running = 0.0
        for index in _batches(len(train_image), settings.batch_size, generator):
            index = index.to(device)
            out_image, out_text = model(train_image[index], train_text[index])
            loss = contrastive_loss(out_image, out_text, model.scale(), settings.text_to_image_weight)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            running += loss.item() * len(index)
        train_seconds += time.perf_counter() - epoch_start
        val_loss = _mean_loss(model, *splits["val"], settings)
        history.append({"epoch": epoch, "train_loss": running / len(train_image), "val_loss": val_loss})
        if val_loss < best_loss:
            best_loss, best_epoch = val_loss, epoch
            save_file(
                {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
                out_dir / "pooled.safetensors",
            )
        elif epoch - best_epoch >= settings.patience:
            break
    (out_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
    metrics = {
        "mode": "pooled",
        "trainable_parameters": count_parameters(model),
        "frozen_parameters": int(image_cache.attrs.get("parameters", 0))
        + int(text_cache.attrs.get("parameters", 0)),
        "image_cache_key": image_cache.attrs["key"],
        "text_cache_key": text_cache.attrs["key"],
        "n_train": len(train_image),
        "n_val": len(splits["val"][0]),
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "best_val_loss": best_loss,
        "wall_seconds": time.perf_counter() - started,
        "train_samples_per_second": len(train_image) * len(history) / max(train_seconds, 1e-9),
        "device": device.type,
        "settings": asdict(settings),
        "history": history,
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def load_adaptor(directory: str | Path) -> Adaptor:
    """Load a trained Adaptor (safetensors weights + JSON config) in eval mode."""
    from safetensors.torch import load_file

    directory = Path(directory)
    config = AdaptorConfig(**json.loads((directory / "config.json").read_text()))
    model = Adaptor(config)
    model.load_state_dict(load_file(directory / "pooled.safetensors"))
    return model.eval()


def adaptor_features(model: Adaptor, features: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Run the frozen Adaptor image path over cached encoder features."""
    outputs = []
    with torch.no_grad():
        for start in range(0, len(features), batch_size):
            outputs.append(model.encode_image(torch.from_numpy(features[start : start + batch_size])).numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0, model.config.width), dtype=np.float32)
