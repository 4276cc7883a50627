"""One evaluation cell: (dataset, method, fraction, seed) -> long-format result rows."""

from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np
import polars as pl

from adaptor.cache.store import Cache
from adaptor.data.manifest import ManifestInfo
from adaptor.evaluate.fractions import PROTOCOLS, draw, draw_mgca, subset_hash
from adaptor.evaluate.metrics import with_intervals
from adaptor.evaluate.probe import HeadSettings, train_and_test

SUBSET_SCHEMA = {"fraction": pl.Float64, "seed": pl.Int64, "id": pl.String}


def _labels(frame: pl.DataFrame) -> np.ndarray:
    return np.asarray(frame["labels"].to_list(), dtype=np.float32)


def draw_subsets(
    manifest: pl.DataFrame, fractions: list[float], seeds: list[int], protocol: str = "strict"
) -> pl.DataFrame:
    """Training subsets of the train split for every fraction and seed, as (fraction, seed, id) rows."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown label-fraction protocol {protocol!r}; one of {PROTOCOLS}")
    train = manifest.filter(pl.col("split") == "train")
    labels, ids = _labels(train), train["id"].to_numpy()
    groups = train.select(pl.col("patient").fill_null(pl.col("id")))["patient"].to_numpy()
    rows = [
        pl.DataFrame({"fraction": fraction, "seed": seed, "id": ids[index]}, schema=SUBSET_SCHEMA)
        for seed in seeds
        for fraction, index in (
            draw(labels, fractions, seed, groups)
            if protocol == "strict"
            else draw_mgca(len(train), fractions)
        ).items()
    ]
    return pl.concat(rows)


def evaluate_cell(
    manifest: pl.DataFrame,
    info: ManifestInfo,
    features: Cache,
    subsets: pl.DataFrame,
    fraction: float,
    seed: int,
    settings: HeadSettings,
    labels: dict[str, str],
) -> pl.DataFrame:
    """Train a head on the subset, test once; ``labels`` adds identifying columns to every row."""
    started = time.perf_counter()
    subset_ids = subsets.filter((pl.col("fraction") == fraction) & (pl.col("seed") == seed))["id"].to_list()
    if not subset_ids:
        raise ValueError(f"{info.dataset}: no subset drawn for fraction {fraction}, seed {seed}")

    def arrays(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return features.embeddings[features.rows(frame["id"].to_list())], _labels(frame)

    train = manifest.filter(pl.col("id").is_in(subset_ids))
    val = manifest.filter(pl.col("split") == "val")
    test = manifest.filter(pl.col("split") == "test")
    test_arrays = arrays(test)
    result = train_and_test(info.task, info.classes, arrays(train), arrays(val), test_arrays, settings, seed)
    metrics = with_intervals(info.task, test_arrays[1], result["test_scores"], info.classes, seed=seed)
    wall = time.perf_counter() - started
    return pl.DataFrame(
        [
            {
                "dataset": info.dataset,
                "task": info.task,
                **labels,
                "fraction": fraction,
                "seed": seed,
                "metric": metric,
                "value": value,
                "ci_low": low,
                "ci_high": high,
                "n_train": len(train),
                "n_test": len(test),
                "head": settings.head,
                "val_metric": result["val_metric"],
                "epochs_run": result["epochs_run"],
                "subset_sha256": subset_hash(subset_ids),
                "features_key": features.attrs["key"],
                "wall_seconds": wall,
            }
            for metric, (value, low, high) in metrics.items()
        ]
    )


def head_settings(entry: dict[str, object]) -> HeadSettings:
    known = set(asdict(HeadSettings()))
    return HeadSettings(**{k: v for k, v in entry.items() if k in known})
