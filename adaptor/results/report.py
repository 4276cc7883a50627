"""A short Markdown report: the headline tables, readable without opening Parquet."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from adaptor.results.tables import summary


def _markdown(frame: pl.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    body = "".join("| " + " | ".join(_cell(v) for v in row) + " |\n" for row in frame.iter_rows())
    return header + body


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "" if value is None else str(value)


def write_report(
    classification: pl.DataFrame,
    pretraining: pl.DataFrame,
    retrieval: pl.DataFrame,
    wall: pl.DataFrame,
    path: str | Path,
) -> None:
    table = summary(classification).with_columns(
        pl.when(pl.col("std").is_null())
        .then(pl.col("mean").round(3).cast(pl.String))
        .otherwise(pl.format("{} ± {}", pl.col("mean").round(3), pl.col("std").round(3)))
        .alias("mean ± std")
    )
    wide = table.pivot(
        on="fraction",
        index=["dataset", "metric", "method", "image_encoder", "text_encoder"],
        values="mean ± std",
    )
    stages = (
        wall.group_by("stage").agg(pl.col("seconds").sum().round(1), pl.len().alias("jobs")).sort("stage")
    )
    text = "# Adaptor results\n\n## Classification\n\n"
    text += "Test split, mean ± std over seeds; columns are label fractions.\n\n"
    text += (
        _markdown(wide)
        + "\n## Pre-training\n\n"
        + _markdown(pretraining.select(pl.exclude("^stage_seconds/.*$")))
    )
    recall = retrieval.with_columns(pl.format("R@{}", pl.col("k")).alias("k")).pivot(
        on="k", index=["image_encoder", "text_encoder", "mode", "direction", "n_pairs"], values="recall"
    )
    text += "\n## Retrieval on the validation pairs\n\n"
    text += "Recall@K, each query's own pair the only right answer; chance is K / n_pairs.\n\n"
    text += _markdown(recall)
    text += "\n## Wall time by stage (sum over jobs, seconds)\n\n" + _markdown(stages)
    Path(path).write_text(text)
