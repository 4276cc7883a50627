"""Train the Adaptor from the embedding caches alone: no encoder runs here.

Pairs are joined by sample id, never by position, and batches are slices of a per-epoch permutation
(reshuffled every epoch, unlike the original). The learning rate is set every step from the real
number of optimiser steps. After every epoch the whole training state is checkpointed, so a killed
run restarted with the same inputs continues where it stopped and ends bit-for-bit where an
uninterrupted run ends (on CPU).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from adaptor.cache.store import Cache, identity_key, usable
from adaptor.devices import autocast
from adaptor.model.adaptor import WEIGHTS, Adaptor, AdaptorConfig, count_parameters, load_adaptor
from adaptor.model.loss import contrastive_loss
from adaptor.progress import Progress
from adaptor.provenance import software
from adaptor.train import checkpoint
from adaptor.train.distributed import batch_loss, local_slice, rank_and_world
from adaptor.train.pairs import PooledPairs, TokenPairs
from adaptor.train.retrieval import recall_at_k

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
    mode: str = "pooled"
    token_ram_gb: float = 8.0
    gather_negatives: bool = True
    precision: str = "bf16"  # training steps on a GPU under bf16 autocast; the CPU trains in fp32
    # The Adaptor's size (AdaptorConfig's width, layers, heads, ffn, dropout); each key not given is
    # the paper's. A smaller one is for ablations and for tests.
    architecture: dict[str, Any] = field(default_factory=dict)


def linear_warmup_decay(total_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    """LR multiplier: linear warm-up over ``warmup_fraction`` of the real steps, then linear decay to 0."""
    warmup = max(1, math.ceil(warmup_fraction * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


def _pairs(
    image: Cache, text: Cache, ids: list[str], settings: PretrainSettings, device: torch.device
) -> PooledPairs | TokenPairs:
    if settings.mode == "pooled":
        return PooledPairs(image, text, ids, device)
    return TokenPairs(image, text, ids, device, int(settings.token_ram_gb * 2**30))


def _mean_loss(model: Adaptor, pairs: PooledPairs | TokenPairs, settings: PretrainSettings) -> float:
    model.eval()
    total = 0.0
    with torch.no_grad():
        for batch in pairs.batches(settings.batch_size):
            out_image, out_text = model(*batch)
            loss = contrastive_loss(out_image, out_text, model.scale(), settings.text_to_image_weight)
            total += loss.item() * len(batch[0])
    return total / len(pairs)


def embed_pairs(
    model: Adaptor, pairs: PooledPairs | TokenPairs, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each modality through its own Adaptor path, in pair order (for retrieval)."""
    model.eval()
    images, texts = [], []
    with torch.no_grad():
        for batch in pairs.batches(batch_size):
            out_image, out_text = model(*batch)
            images.append(out_image.float().cpu().numpy())
            texts.append(out_text.float().cpu().numpy())
    return np.concatenate(images), np.concatenate(texts)


def chance_loss(batch_sizes: list[int]) -> float:
    """The loss of uninformative embeddings: ln(B) per batch of B, both directions, sample-weighted."""
    return float(sum(size * math.log(size) for size in batch_sizes) / sum(batch_sizes))


def run_key(settings: PretrainSettings, image: Cache, text: Cache, ids: list[str]) -> str:
    """What a checkpoint must match to be resumed: the recipe, both caches and the training ids."""
    fingerprint = {
        "settings": asdict(settings),
        "image": image.attrs["key"],
        "text": text.attrs["key"],
        "ids": ids,
    }
    return identity_key(fingerprint)


def pretrain(
    manifest: pl.DataFrame,
    image_cache: Cache,
    text_cache: Cache,
    settings: PretrainSettings,
    out_dir: str | Path,
) -> dict[str, object]:
    """Train (or resume), keep the weights with the lowest validation loss, and return the run's metrics."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rank, world = rank_and_world()
    device = (
        torch.device("cuda", torch.cuda.current_device())
        if torch.cuda.is_available()
        else torch.device("cpu")
    )
    splits = {}
    for split in ("train", "val"):
        listed = manifest.filter(pl.col("split") == split)["id"].to_list()
        ids = usable(listed, image_cache, text_cache)
        if len(ids) < len(listed):
            dropped = len(listed) - len(ids)
            log.warning("%s: %d of %d pairs rejected at embedding, left out", split, dropped, len(listed))
        if len(ids) < 2:
            raise ValueError(f"pre-training needs at least 2 {split} pairs, found {len(ids)}")
        splits[split] = (ids, _pairs(image_cache, text_cache, ids, settings, device))
    train, val = splits["train"][1], splits["val"][1]
    torch.manual_seed(settings.seed)
    image_dim, text_dim = train.dims
    config = AdaptorConfig(
        image_dim,
        text_dim,
        **settings.architecture,
        logit_scale_max=settings.logit_scale_max,
        mode=settings.mode,
    )
    model = Adaptor(config).to(device)
    trainer: torch.nn.Module = model
    if world > 1:
        torch.manual_seed(settings.seed + 1000 * rank)  # a different dropout stream per rank
        trainer = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device] if device.type == "cuda" else None
        )
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    generator = torch.Generator().manual_seed(settings.seed)
    steps_per_epoch = len(train.batch_sizes(settings.batch_size))
    factor = linear_warmup_decay(settings.epochs * steps_per_epoch, settings.warmup_fraction)
    key = run_key(settings, image_cache, text_cache, splits["train"][0])
    folder = out_dir / "checkpoint"
    saved = checkpoint.read_progress(folder)
    if saved is not None and saved["run_key"] == key:
        progress = checkpoint.load(folder, model, optimiser, generator)
        log.info("resuming after epoch %d from %s", progress["epoch"], folder)
    else:
        progress = {
            "run_key": key,
            "epoch": -1,
            "step": 0,
            "best_loss": math.inf,
            "best_epoch": -1,
            "train_seconds": 0.0,
            "history": [],
            "stopped": False,
        }
    steps = Progress(settings.epochs * steps_per_epoch - progress["step"], "pre-training", "steps")
    precision = autocast(device) if settings.precision == "bf16" else contextlib.nullcontext()
    for epoch in range(progress["epoch"] + 1, settings.epochs):
        if progress["stopped"]:
            break
        epoch_start = time.perf_counter()
        model.train()
        running, seen = 0.0, 0
        for batch in train.batches(settings.batch_size, generator):
            for group in optimiser.param_groups:
                group["lr"] = settings.lr * factor(progress["step"])
            batch = local_slice(batch)
            with precision:
                out_image, out_text = trainer(*batch)
                weight, gather = settings.text_to_image_weight, settings.gather_negatives
                loss = batch_loss(out_image, out_text, model.scale(), weight, gather)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            progress["step"] += 1
            steps.update()
            running, seen = running + loss.item() * len(batch[0]), seen + len(batch[0])
        progress["train_seconds"] += time.perf_counter() - epoch_start
        val_loss = _mean_loss(model, val, settings)
        if world > 1:  # rank 0's value decides for all, so no rank can stop alone
            shared = torch.tensor([val_loss], device=device)
            torch.distributed.broadcast(shared, 0)
            val_loss = shared.item()
        progress["history"].append({"epoch": epoch, "train_loss": running / seen, "val_loss": val_loss})
        log.info("epoch %d: train loss %.4f, validation loss %.4f", epoch, running / seen, val_loss)
        progress["epoch"] = epoch
        improved = val_loss < progress["best_loss"]
        if improved:
            progress["best_loss"], progress["best_epoch"] = val_loss, epoch
        elif epoch - progress["best_epoch"] >= settings.patience:
            progress["stopped"] = True
        if rank == 0:  # every rank computed the same validation loss from the same weights
            checkpoint.save(folder, model, optimiser, generator, progress, improved)
        if world > 1:
            torch.distributed.barrier()
    steps.close()
    if rank > 0:
        return {}
    temporary = out_dir / f"{WEIGHTS}.tmp"
    shutil.copyfile(checkpoint.best_weights(folder), temporary)
    os.replace(temporary, out_dir / WEIGHTS)
    (out_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
    best = load_adaptor(out_dir).to(device)
    retrieval = recall_at_k(*embed_pairs(best, val, settings.batch_size))
    history = progress["history"]
    metrics = {
        "mode": settings.mode,
        "trainable_parameters": count_parameters(model),
        "frozen_parameters": int(image_cache.attrs.get("parameters", 0))
        + int(text_cache.attrs.get("parameters", 0)),
        "image_cache_key": image_cache.attrs["key"],
        "text_cache_key": text_cache.attrs["key"],
        "text_encoder_identity": {
            k: v for k, v in text_cache.attrs["identity"].items() if k != "manifest_ids_sha256"
        },
        "n_train": len(train),
        "n_val": len(val),
        "epochs_run": len(history),
        "best_epoch": progress["best_epoch"],
        "best_val_loss": progress["best_loss"],
        "chance_val_loss": chance_loss(val.batch_sizes(settings.batch_size)),
        "retrieval": retrieval,
        "wall_seconds": time.perf_counter() - started,
        "train_samples_per_second": len(train) * len(history) / max(progress["train_seconds"], 1e-9),
        "device": device.type,
        "software": software(device.type == "cuda"),
        "processes": world,
        "settings": asdict(settings),
        "history": history,
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics
