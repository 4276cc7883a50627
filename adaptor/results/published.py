"""The paper's published numbers, bundled with the package, and ours placed beside them.

The files in ``published/`` restate the paper's tables (their source is named in each file's header);
they were measured on the real datasets, which a demo run never sees."""

from __future__ import annotations

from importlib.resources import files

import polars as pl

SOURCE = 'Qin et al., "Freeze the backbones", ICASSP 2024 (arXiv 2401.01179)'
PUBLISHED = "published, on the real datasets"
PUBLISHED_COUNTS = "published"
THIS_RUN = "this run"
NOT_COMPARABLE = (
    "This run used the offline demo's generated images and label sets: its numbers show that the "
    "pipeline works end to end and are not comparable with the published ones."
)
PAPER_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "table": pl.String,
    "method": pl.String,
    "image_encoder": pl.String,
    "text_encoder": pl.String,
    "dataset": pl.String,
    "task": pl.String,
    "metric": pl.String,
    "fraction": pl.Float64,
    "value": pl.Float64,
}
PARAMETER_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "method": pl.String,
    "image_encoder": pl.String,
    "text_encoder": pl.String,
    "trainable_min": pl.Int64,
    "trainable_max": pl.Int64,
    "frozen": pl.Int64,
    "exact": pl.Boolean,
}
# What a comparison row holds: ours as mean and std over seeds, the paper's as its one number.
COMPARISON_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "source": pl.String,
    "dataset": pl.String,
    "metric": pl.String,
    "method": pl.String,
    "image_encoder": pl.String,
    "text_encoder": pl.String,
    "fraction": pl.Float64,
    "percent": pl.Float64,
    "std": pl.Float64,
    "seeds": pl.Int64,
}


def _read(name: str, schema: dict[str, pl.DataType | type[pl.DataType]]) -> pl.DataFrame:
    data = (files("adaptor.results") / "published" / name).read_bytes()
    return pl.read_csv(data, comment_prefix="#", schema=schema)


def paper_results() -> pl.DataFrame:
    """The published results in percent: table (main or grid), method, encoders, dataset, task,
    metric, fraction, value."""
    return _read("paper_results.csv", PAPER_COLUMNS)


def published_parameters() -> pl.DataFrame:
    """Published trainable and frozen parameter counts (a range where the paper gives one)."""
    return _read("parameters.csv", PARAMETER_COLUMNS)


def beside_published(summary: pl.DataFrame) -> pl.DataFrame:
    """Our cells (mean and std over seeds, in percent) and the paper's, for every dataset and
    metric the paper reports, one row per (source, model, fraction)."""
    paper = paper_results()
    reported = paper.select("dataset", "metric").unique()
    model = ("dataset", "metric", "method", "image_encoder", "text_encoder", "fraction")
    ours = summary.join(reported, on=["dataset", "metric"]).select(
        pl.lit(THIS_RUN).alias("source"),
        *model,
        (pl.col("mean") * 100).alias("percent"),
        pl.col("std") * 100,
        "seeds",
    )
    theirs = paper.select(
        pl.lit(PUBLISHED).alias("source"),
        *model,
        pl.col("value").alias("percent"),
        pl.lit(None, pl.Float64).alias("std"),
        pl.lit(None, pl.Int64).alias("seeds"),
    )
    typed = [pl.col(name).cast(kind) for name, kind in COMPARISON_COLUMNS.items()]
    frame = pl.concat([ours.select(typed), theirs.select(typed)])
    # This run's rows first in each dataset's block, then the paper's in its own order.
    order = pl.int_range(pl.len()).alias("order")
    return (
        frame.with_columns(order)
        .sort("dataset", "metric", pl.col("source") != THIS_RUN, "order")
        .drop("order")
    )


def parameters(pretraining: pl.DataFrame) -> pl.DataFrame:
    """Trainable against frozen parameters: each Adaptor this run trained, then the published
    counts."""
    ours = pretraining.select(
        pl.lit(THIS_RUN).alias("source"),
        pl.format("Adaptor ({})", "mode").alias("method"),
        "image_encoder",
        "text_encoder",
        pl.col("trainable_parameters").alias("trainable_min"),
        pl.col("trainable_parameters").alias("trainable_max"),
        pl.col("frozen_parameters").alias("frozen"),
        pl.lit(True).alias("exact"),
    )
    theirs = published_parameters().select(pl.lit(PUBLISHED_COUNTS).alias("source"), pl.all())
    frame = pl.concat([ours.cast(theirs.schema), theirs])
    return frame.with_columns(
        (pl.col("trainable_max") / (pl.col("trainable_max") + pl.col("frozen"))).alias("trainable_share")
    )
