"""Seconds per stage and the cache dividend, from known benchmark rows."""

from __future__ import annotations

import polars as pl
import pytest

from adaptor.results import costs

WALL = pl.DataFrame(
    {
        "stage": ["embed", "embed", "embed_init", "embed_part", "embed_part", "embed_finalize", "pretrain"],
        "job": [
            "results/benchmarks/embed/mimic/image/e",
            "results/benchmarks/embed/rsna/image/e",
            "results/benchmarks/embed_init/mimic/text/t",
            "results/benchmarks/embed_part/mimic/text/t/0",
            "results/benchmarks/embed_part/mimic/text/t/1",
            "results/benchmarks/embed_finalize/mimic/text/t",
            "results/benchmarks/pretrain/e/t/pooled",
        ],
        "seconds": [30.0, 99.0, 1.0, 10.0, 12.0, 2.0, 50.0],
    }
)


def test_stage_seconds_sum_each_stages_jobs_with_their_share() -> None:
    stages = {row["stage"]: row for row in costs.stage_seconds(WALL).iter_rows(named=True)}
    assert (stages["embed"]["seconds"], stages["embed"]["jobs"]) == (129.0, 2)
    assert (stages["embed_part"]["seconds"], stages["embed_part"]["jobs"]) == (22.0, 2)
    assert stages["pretrain"]["share"] == pytest.approx(50 / 204)


def test_stages_with_equal_seconds_keep_one_order() -> None:
    """Ties by name, so two runs' reports list them alike (group_by's order is not stable)."""
    tied = pl.DataFrame({"stage": ["zeroshot_split", "subsets", "masks", "pretrain"], "job": list("abcd")})
    for seed in range(5):
        shuffled = tied.with_columns(seconds=pl.Series([1.7, 1.7, 1.7, 9.0])).sample(fraction=1.0, seed=seed)
        assert costs.stage_seconds(shuffled)["stage"].to_list() == [
            "pretrain",
            "masks",
            "subsets",
            "zeroshot_split",
        ]


def test_a_caches_seconds_add_up_its_parts() -> None:
    caches = costs.cache_seconds(WALL)
    assert caches.rows() == [
        ("mimic", "image", "e", 30.0),
        ("mimic", "text", "t", 25.0),
        ("rsna", "image", "e", 99.0),
    ]


def test_the_dividend_counts_the_encoders_once_against_once_per_epoch() -> None:
    pretraining = pl.DataFrame(
        {
            "image_encoder": ["e"],
            "text_encoder": ["t"],
            "mode": ["pooled"],
            "epochs_run": [8],
            "pretrain_seconds": [50.0],
        }
    )
    row = costs.cache_dividend(WALL, pretraining, "mimic").row(0, named=True)
    assert (row["image_embed_seconds"], row["text_embed_seconds"]) == (30.0, 25.0)  # not RSNA's cache
    assert row["cached_seconds"] == 105.0 and row["encoders_in_loop_seconds"] == 8 * 55.0 + 50.0
    assert row["dividend"] == pytest.approx(490 / 105)
