"""One classification cell: (dataset, method, fraction, seed) -> long-format result rows."""

from __future__ import annotations

import time

import numpy as np
import polars as pl
import torch

from adaptor.cache.store import Cache, identity_key
from adaptor.data.manifest import ManifestInfo
from adaptor.devices import CPU
from adaptor.evaluate.fractions import subset_hash
from adaptor.evaluate.metrics import with_intervals
from adaptor.evaluate.probe import HeadSettings, train_and_test
from adaptor.evaluate.subsets import CellData, labels_array


def result_rows(
    columns: dict[str, object], metrics: dict[str, tuple[float, float, float]], started: float
) -> pl.DataFrame:
    """Long format: one row per metric with its bootstrap interval, the cell's columns on each."""
    wall = time.perf_counter() - started
    return pl.DataFrame(
        [
            columns | {"metric": metric, "value": value, "ci_low": low, "ci_high": high, "wall_seconds": wall}
            for metric, (value, low, high) in metrics.items()
        ]
    )


def evaluate_cell(
    manifest: pl.DataFrame,
    info: ManifestInfo,
    features: Cache,
    subsets: pl.DataFrame,
    fraction: float,
    seed: int,
    settings: HeadSettings,
    labels: dict[str, object],
    device: torch.device = CPU,
) -> pl.DataFrame:
    """Train a head on the subset (on ``device``), test once; ``labels`` adds identifying columns to
    every row."""
    started = time.perf_counter()
    cell = CellData.select(manifest, subsets, fraction, seed)

    def arrays(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return features.embeddings[features.rows(frame["id"].to_list())], labels_array(frame)

    test_arrays = arrays(cell.test)
    result = train_and_test(
        info.task, info.classes, arrays(cell.train), arrays(cell.val), test_arrays, settings, seed, device
    )
    metrics = with_intervals(info.task, test_arrays[1], result["test_scores"], info.classes, seed=seed)
    columns = {
        "dataset": info.dataset,
        "task": info.task,
        **labels,
        "fraction": fraction,
        "seed": seed,
        "n_train": len(cell.train),
        "n_test": len(cell.test),
        "head": settings.head,
        "val_metric": result["val_metric"],
        "epochs_run": result["epochs_run"],
        "protocol": cell.protocol,
        "subset_sha256": subset_hash(cell.subset_ids),
    }
    return result_rows(columns, metrics, started)


def identity_columns(features: Cache, settings: dict[str, object]) -> dict[str, object]:
    """What a result depends on, as columns: the features' cache key, the encoders' and Adaptor's
    weights behind them, and a hash of the job's settings."""
    identity = features.attrs["identity"]
    return {
        "features_key": features.attrs["key"],
        "image_weights_sha256": identity.get("image_weights_sha256", identity.get("weights_sha256")),
        "adaptor_weights_sha256": identity.get("adaptor_weights_sha256"),
        "text_cache_key": identity.get("text_cache_key"),
        "config_sha256": identity_key(settings),
    }
