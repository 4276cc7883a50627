"""A short Markdown report: the headline tables, readable without opening Parquet."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from adaptor.results import tables
from adaptor.results.tables import DICE_METRICS, PRIMARY_METRICS, summary

# The stages whose jobs run after the tables are written (their benchmark folders).
AFTER_TABLES = ("report", "figures")


def _markdown(frame: pl.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    body = "".join("| " + " | ".join(_cell(v) for v in row) + " |\n" for row in frame.iter_rows())
    return header + body


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "" if value is None else str(value)


def _over_seeds(frame: pl.DataFrame, metrics: tuple[str, ...] = PRIMARY_METRICS) -> pl.DataFrame:
    """Wide view: one column per label fraction, each cell "mean ± std" over seeds."""
    table = summary(frame, metrics).with_columns(
        pl.when(pl.col("std").is_null())
        .then(pl.col("mean").round(3).cast(pl.String))
        .otherwise(pl.format("{} ± {}", pl.col("mean").round(3), pl.col("std").round(3)))
        .alias("mean ± std")
    )
    return table.pivot(
        on="fraction",
        index=["dataset", "protocol", "metric", "method", "image_encoder", "text_encoder"],
        values="mean ± std",
    )


def _segmentation_section(segmentation: pl.DataFrame) -> str:
    if segmentation.is_empty():
        return ""
    flagged = (
        segmentation.filter(~pl.col("beats_empty_predictor"))
        .select("dataset", "method", "image_encoder", "text_encoder", "fraction", "seed")
        .unique()
        .sort(pl.all())
    )
    text = "\n## Segmentation\n\n"
    text += (
        "Test split, mean ± std over seeds. `dice_mgca` scores an empty mask 1 when the prediction is empty "
        "(MGCA's metric); `dice_positive` averages images with a mask only; `dice_empty_predictor` is what "
        "predicting nothing scores under `dice_mgca`.\n\n"
    )
    text += _markdown(_over_seeds(segmentation, DICE_METRICS))
    text += f"\n{len(flagged)} cells do not beat the empty predictor under `dice_mgca`"
    return text + (":\n\n" + _markdown(flagged) if len(flagged) else ".\n")


def _zeroshot_section(zeroshot: pl.DataFrame) -> str:
    if zeroshot.is_empty():
        return ""
    view = zeroshot.select(
        "dataset",
        "protocol",
        "method",
        "image_encoder",
        "text_encoder",
        "metric",
        "value",
        "ci_low",
        "ci_high",
        "n_test",
    )
    text = "\n## Zero-shot (no labels)\n\n"
    text += (
        "Test-split AUROC from one positive and one negative prompt per class, 95 % bootstrap interval.\n\n"
    )
    return text + _markdown(view)


def write_report(
    classification: pl.DataFrame,
    segmentation: pl.DataFrame,
    zeroshot: pl.DataFrame,
    pretraining: pl.DataFrame,
    retrieval: pl.DataFrame,
    wall: pl.DataFrame,
    path: str | Path,
) -> None:
    stages = (
        wall.group_by("stage").agg(pl.col("seconds").sum().round(1), pl.len().alias("jobs")).sort("stage")
    )
    text = "# Adaptor results\n\n## Classification\n\n"
    text += "Test split, mean ± std over seeds; columns are label fractions.\n\n"
    text += _markdown(_over_seeds(classification))
    text += _segmentation_section(segmentation) + _zeroshot_section(zeroshot)
    text += "\n## Pre-training\n\n" + _markdown(pretraining.select(pl.exclude("^stage_seconds/.*$")))
    recall = retrieval.with_columns(pl.format("R@{}", pl.col("k")).alias("k")).pivot(
        on="k", index=["image_encoder", "text_encoder", "mode", "direction", "n_pairs"], values="recall"
    )
    text += "\n## Retrieval on the validation pairs\n\n"
    text += "Recall@K, each query's own pair the only right answer; chance is K / n_pairs.\n\n"
    text += _markdown(recall)
    text += "\n## Wall time by stage (sum over jobs, seconds)\n\n" + _markdown(stages)
    Path(path).write_text(text)


def write_tables_and_report(
    runs: dict[str, list[str]],
    pretrained: list[tuple[str, str, str]],
    benchmarks_dir: str | Path,
    out_dir: str | Path,
    report: str | Path,
) -> None:
    """Every table (``runs`` by task: classification, segmentation, zeroshot result files) as
    Parquet under ``out_dir``, each written whole or not at all, then the Markdown report."""
    classification = tables.runs(runs["classification"])
    segmentation = tables.runs(runs["segmentation"])
    zeroshot = tables.runs(runs["zeroshot"], tables.ZEROSHOT_COLUMNS)
    # Every job's benchmark file but those of the jobs that run after the tables (the report's
    # own, written once it ends, and the figures drawn from it): a rerun would otherwise count the
    # previous run's beside this run's jobs.
    timed = [
        f
        for f in Path(benchmarks_dir).rglob("*.tsv")
        if f.relative_to(benchmarks_dir).parts[0] not in AFTER_TABLES
    ]
    wall = tables.wall_times(sorted(timed))
    stage_seconds = dict(wall.group_by("stage").agg(pl.col("seconds").sum()).rows())
    pretraining = tables.pretraining(pretrained, stage_seconds)
    retrieval = tables.retrieval(pretrained)
    written = {
        "classification": classification,
        "segmentation": segmentation,
        "zeroshot": zeroshot,
        "pretraining": pretraining,
        "retrieval": retrieval,
        "wall_time": wall,
        "summary": tables.seed_summary(classification, segmentation),
    }
    for name, frame in written.items():
        tables.write_atomic(frame, Path(out_dir) / f"{name}.parquet")
    write_report(classification, segmentation, zeroshot, pretraining, retrieval, wall, report)
