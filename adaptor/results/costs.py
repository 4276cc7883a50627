"""What the run cost, from its jobs' benchmark files: seconds per stage, and the cache dividend of
pre-training on cached features instead of with the frozen encoders in the loop."""

from __future__ import annotations

from pathlib import PurePath

import polars as pl

# The stages that write a cache (with several parts, all of them do), and how many folders of their
# benchmark files' paths name the cache: dataset/modality/encoder, then the part where there is one.
EMBED_STAGES = {"embed": 3, "embed_init": 3, "embed_part": 4, "embed_finalize": 3}


def stage_seconds(wall: pl.DataFrame) -> pl.DataFrame:
    """Seconds per stage summed over its jobs, the number of jobs, and the share of the whole."""
    total = wall["seconds"].sum()
    return (
        wall.group_by("stage")
        .agg(pl.col("seconds").sum().round(1), pl.len().cast(pl.Int64).alias("jobs"))
        .with_columns((pl.col("seconds") / total if total else pl.lit(None, pl.Float64)).alias("share"))
        .sort(["seconds", "stage"], descending=[True, False])  # ties in stage order, not hash order
    )


def cache_seconds(wall: pl.DataFrame) -> pl.DataFrame:
    """Seconds spent writing each cache (dataset, modality, encoder), summed over its embed jobs."""
    rows = []
    for stage, job, seconds in wall.filter(pl.col("stage").is_in(list(EMBED_STAGES))).iter_rows():
        dataset, modality, encoder = PurePath(job).parts[-EMBED_STAGES[stage] :][:3]
        rows.append({"dataset": dataset, "modality": modality, "encoder": encoder, "seconds": seconds})
    schema = {"dataset": pl.String, "modality": pl.String, "encoder": pl.String, "seconds": pl.Float64}
    frame = pl.DataFrame(rows, schema=schema)
    return frame.group_by("dataset", "modality", "encoder").agg(pl.col("seconds").sum()).sort(pl.all())


def cache_dividend(wall: pl.DataFrame, pretraining: pl.DataFrame, dataset: str) -> pl.DataFrame:
    """Per Adaptor: its two caches on the pre-training set cost ``embed_seconds`` once; with the
    encoders in the loop, every epoch would run both over the set again. Forward passes only, no
    image augmentation: a lower bound on what the loop would cost."""
    caches = cache_seconds(wall).filter(pl.col("dataset") == dataset)
    image = caches.filter(pl.col("modality") == "image").select(
        pl.col("encoder").alias("image_encoder"), pl.col("seconds").alias("image_embed_seconds")
    )
    text = caches.filter(pl.col("modality") == "text").select(
        pl.col("encoder").alias("text_encoder"), pl.col("seconds").alias("text_embed_seconds")
    )
    embed = pl.col("image_embed_seconds") + pl.col("text_embed_seconds")
    return (
        pretraining.select("image_encoder", "text_encoder", "mode", "epochs_run", "pretrain_seconds")
        .join(image, on="image_encoder", how="left")
        .join(text, on="text_encoder", how="left")
        .with_columns(
            (embed + pl.col("pretrain_seconds")).alias("cached_seconds"),
            (embed * pl.col("epochs_run") + pl.col("pretrain_seconds")).alias("encoders_in_loop_seconds"),
        )
        .with_columns((pl.col("encoders_in_loop_seconds") / pl.col("cached_seconds")).alias("dividend"))
    )
