"""Aggregate per-job outputs into the Parquet tables users read with polars."""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from adaptor.provenance import SOFTWARE_COLUMNS, software_columns

IDENTITY_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "dataset": pl.String,
    "task": pl.String,
    "image_encoder": pl.String,
    "text_encoder": pl.String,
    "method": pl.String,
    "protocol": pl.String,
}
METRIC_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "metric": pl.String,
    "value": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
}
# One row per (cell, metric). Zero-shot cells have no fraction, seed or training set.
RUN_COLUMNS = IDENTITY_COLUMNS | {"fraction": pl.Float64, "seed": pl.Int64} | METRIC_COLUMNS
RUN_COLUMNS |= {"n_train": pl.Int64, "n_test": pl.Int64}
ZEROSHOT_COLUMNS = IDENTITY_COLUMNS | METRIC_COLUMNS | {"n_test": pl.Int64}
SUMMARY_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "mean": pl.Float64,
    "std": pl.Float64,
    "seeds": pl.Int64,
}
# The software that made each row, last in every table; null where a file predates them.
SOFTWARE_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = dict.fromkeys(SOFTWARE_COLUMNS, pl.String)
PRIMARY_METRICS = ("auroc", "accuracy")
DICE_METRICS = ("dice_mgca", "dice_positive", "dice_empty_predictor")


def write_atomic(frame: pl.DataFrame, path: str | Path) -> None:
    """Write Parquet through a temporary file so a reader never sees half a table."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    frame.write_parquet(temporary)
    os.replace(temporary, path)


def runs(
    run_files: Sequence[str | Path], columns: Mapping[str, pl.DataType | type[pl.DataType]] = RUN_COLUMNS
) -> pl.DataFrame:
    """Concatenate per-job result files; the documented columns come first, with their types, the
    software columns last."""
    if not run_files:
        return pl.DataFrame(schema=dict(columns) | SOFTWARE_SCHEMA)
    repeated = sorted(name for name, count in Counter(map(str, run_files)).items() if count > 1)
    if repeated:
        raise ValueError(f"result files listed more than once (each would count twice): {repeated[:3]}")
    frame = pl.concat([pl.read_parquet(f) for f in run_files], how="diagonal_relaxed")
    key = [c for c in (*IDENTITY_COLUMNS, "fraction", "seed", "metric") if c in columns]
    twice = frame.filter(frame.select(key).is_duplicated())
    if len(twice):
        raise ValueError(
            f"{len(twice)} result rows share their (cell, metric) with another, e.g. "
            f"{twice.select(key).row(0, named=True)}: a mean over them would count a cell twice"
        )
    absent = [pl.lit(None).alias(c) for c in SOFTWARE_SCHEMA if c not in frame.columns]
    frame = frame.with_columns(absent).with_columns(
        pl.col(c).cast(t) for c, t in (dict(columns) | SOFTWARE_SCHEMA).items()
    )
    rest = [c for c in frame.columns if c not in columns and c not in SOFTWARE_SCHEMA]
    order = [
        c
        for c in ("dataset", "method", "image_encoder", "text_encoder", "fraction", "seed", "metric")
        if c in columns
    ]
    return frame.select(*columns, *rest, *SOFTWARE_SCHEMA).sort(order, nulls_last=True)


def wall_times(benchmark_files: list[str | Path]) -> pl.DataFrame:
    """One row per Snakemake job from its ``benchmark:`` file: stage (rule), job name and seconds."""
    rows = []
    for file in benchmark_files:
        parts = Path(file).parts
        stage = parts[len(parts) - parts[::-1].index("benchmarks")]
        seconds = pl.read_csv(file, separator="\t")["s"][0]
        rows.append({"stage": stage, "job": str(Path(file).with_suffix("")), "seconds": float(seconds)})
    return pl.DataFrame(rows, schema={"stage": pl.String, "job": pl.String, "seconds": pl.Float64})


def retrieval(pretrained: Sequence[tuple[str, str, str | Path]]) -> pl.DataFrame:
    """Recall@K on the held-out pairs, both directions, one row per (Adaptor, direction, K);
    ``pretrained`` holds (image encoder, text encoder, metrics.json) of each Adaptor."""
    rows = []
    for image_encoder, text_encoder, file in pretrained:
        metrics = json.loads(Path(file).read_text())
        for name, value in metrics["retrieval"].items():
            direction, k = name.split("/R@")
            rows.append(
                {
                    "image_encoder": image_encoder,
                    "text_encoder": text_encoder,
                    "mode": metrics["mode"],
                    "direction": direction,
                    "k": int(k),
                    "recall": value,
                    "n_pairs": metrics["n_val"],
                    "chance": min(1.0, int(k) / metrics["n_val"]),
                    **software_columns(metrics.get("software")),
                }
            )
    return pl.DataFrame(rows, schema_overrides=SOFTWARE_SCHEMA)


def pretraining(
    pretrained: Sequence[tuple[str, str, str | Path]], stage_seconds: dict[str, float]
) -> pl.DataFrame:
    """One row per trained Adaptor (image encoder, text encoder, metrics.json), with the wall time
    of each stage of the DAG beside it."""
    rows = []
    for image_encoder, text_encoder, file in pretrained:
        metrics = json.loads(Path(file).read_text())
        rows.append(
            {
                "image_encoder": image_encoder,
                "text_encoder": text_encoder,
                "mode": metrics["mode"],
                "trainable_parameters": metrics["trainable_parameters"],
                "frozen_parameters": metrics["frozen_parameters"],
                "epochs_run": metrics["epochs_run"],
                "best_epoch": metrics["best_epoch"],
                "best_val_loss": metrics["best_val_loss"],
                "chance_val_loss": metrics["chance_val_loss"],
                "n_train": metrics["n_train"],
                "n_val": metrics["n_val"],
                "train_samples_per_second": metrics["train_samples_per_second"],
                "pretrain_seconds": metrics["wall_seconds"],
                **{f"stage_seconds/{stage}": seconds for stage, seconds in sorted(stage_seconds.items())},
                **software_columns(metrics.get("software")),
            }
        )
    return pl.DataFrame(rows, schema_overrides=SOFTWARE_SCHEMA)


def pretraining_curves(pretrained: Sequence[tuple[str, str, str | Path]]) -> pl.DataFrame:
    """Train and validation loss per epoch of each Adaptor (image encoder, text encoder,
    metrics.json), one row per (Adaptor, epoch)."""
    rows = []
    for image_encoder, text_encoder, file in pretrained:
        metrics = json.loads(Path(file).read_text())
        keys = {"image_encoder": image_encoder, "text_encoder": text_encoder, "mode": metrics["mode"]}
        made_by = software_columns(metrics.get("software"))
        rows += [
            keys | {k: epoch[k] for k in ("epoch", "train_loss", "val_loss")} | made_by
            for epoch in metrics["history"]
        ]
    schema: dict[str, pl.DataType | type[pl.DataType]] = {
        "image_encoder": pl.String,
        "text_encoder": pl.String,
        "mode": pl.String,
        "epoch": pl.Int64,
        "train_loss": pl.Float64,
        "val_loss": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema | SOFTWARE_SCHEMA)


# What a seed summary groups by: everything that names a cell but its seed.
SUMMARY_KEYS = (
    "dataset",
    "task",
    "protocol",
    "method",
    "image_encoder",
    "text_encoder",
    "fraction",
    "metric",
)


def seed_summary(*runs: pl.DataFrame) -> pl.DataFrame:
    """Mean, standard deviation and number of seeds of every metric, per cell but its seed, over
    the classification and segmentation tables: the group-by every reader would otherwise write.
    (Zero-shot has neither fractions nor seeds; its table is its summary.) Seeds made by different
    software stacks stay in one cell, and say so: ``software_stacks`` counts the stacks, and each
    software column lists its seeds' distinct values (``unknown`` for rows that predate them)."""
    frames = [frame.select(*SUMMARY_KEYS, "value", *SOFTWARE_SCHEMA) for frame in runs if len(frame)]
    if not frames:
        schema = {key: RUN_COLUMNS[key] for key in SUMMARY_KEYS} | SUMMARY_COLUMNS
        return pl.DataFrame(schema=schema | {"software_stacks": pl.Int64} | SOFTWARE_SCHEMA)
    stack = pl.concat_str([pl.col(c).fill_null("-") for c in SOFTWARE_SCHEMA], separator="|")
    return (
        pl.concat(frames)
        .with_columns(pl.col(SOFTWARE_COLUMNS[:-2]).fill_null("unknown"))  # CUDA's null: not used
        .group_by(SUMMARY_KEYS)
        .agg(
            pl.col("value").mean().alias("mean"),
            pl.col("value").std().alias("std"),
            pl.len().cast(pl.Int64).alias("seeds"),  # the same type as the empty table's
            stack.n_unique().cast(pl.Int64).alias("software_stacks"),
            *(pl.col(c).unique().sort().str.join(", ").alias(c) for c in SOFTWARE_SCHEMA),
        )
        .with_columns(pl.when(pl.col(c) != "").then(pl.col(c)).alias(c) for c in SOFTWARE_SCHEMA)
        .sort(SUMMARY_KEYS, nulls_last=True)
    )


def summary(frame: pl.DataFrame, metrics: tuple[str, ...] = PRIMARY_METRICS) -> pl.DataFrame:
    """Mean and standard deviation over seeds of each of ``metrics``, one row per cell."""
    return (
        frame.filter(pl.col("metric").is_in(list(metrics)))
        .group_by("dataset", "protocol", "metric", "method", "image_encoder", "text_encoder", "fraction")
        .agg(
            pl.col("value").mean().alias("mean"), pl.col("value").std().alias("std"), pl.len().alias("seeds")
        )
        .sort("dataset", "metric", "method", "fraction")
    )
