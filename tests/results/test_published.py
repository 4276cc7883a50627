"""The bundled published numbers, read with their types, and ours placed beside them."""

from __future__ import annotations

import polars as pl

from adaptor.results import published


def _summary(rows: list[tuple[str, str, str, float, float, float | None]]) -> pl.DataFrame:
    keys = ("dataset", "metric", "method", "fraction", "mean", "std")
    frame = pl.DataFrame([dict(zip(keys, row, strict=True)) for row in rows])
    return frame.with_columns(
        image_encoder=pl.lit("e"), text_encoder=pl.lit(None, pl.String), seeds=pl.lit(3, pl.Int64)
    )


def test_the_papers_numbers_load_with_their_source_and_types() -> None:
    paper = published.paper_results()
    assert paper.schema == pl.Schema(published.PAPER_COLUMNS)
    assert len(paper) == 234 and set(paper["table"]) == {"main", "grid"}
    # Spot checks against the paper's main table (adaptor-method.md section 7), in percent.
    mgca = paper.filter(pl.col("method") == "MGCA (ViT-B/16)", pl.col("dataset") == "rsna")
    assert mgca.sort("fraction")["value"].to_list() == [89.1, 89.9, 90.8]
    grid = paper.filter(pl.col("table") == "grid")
    assert grid.select("image_encoder", "text_encoder").n_unique() == 15
    assert published.SOURCE.endswith("(arXiv 2401.01179)")


def test_published_parameter_counts_are_the_papers() -> None:
    counts = published.published_parameters()
    adaptor = counts.filter(pl.col("method") == "Adaptor", pl.col("image_encoder") == "dinov2-b")
    assert adaptor.select("trainable_min", "frozen").row(0) == (12_207_617, 86_580_480 + 109_482_240)
    end_to_end = counts.filter(~pl.col("exact"))
    assert end_to_end.select("trainable_min", "trainable_max").row(0) == (110_000_000, 170_000_000)


def test_ours_come_first_in_percent_beside_the_papers_rows() -> None:
    summary = _summary(
        [
            ("rsna", "auroc", "adaptor", 0.01, 0.80, 0.02),
            ("rsna", "auroc", "frozen", 0.01, 0.70, None),
            ("rsna", "macro_f1", "adaptor", 0.01, 0.5, 0.1),  # the paper reports no macro F1
            ("padchest", "auroc", "adaptor", 0.01, 0.9, 0.0),  # nor PadChest
        ]
    )
    comparison = published.beside_published(summary)
    assert comparison.schema == pl.Schema(published.COMPARISON_COLUMNS)
    rsna = comparison.filter(pl.col("dataset") == "rsna", pl.col("metric") == "auroc")
    ours = rsna.filter(pl.col("source") == published.THIS_RUN)
    assert ours.select("method", "percent", "std").rows() == [("adaptor", 80.0, 2.0), ("frozen", 70.0, None)]
    assert rsna["source"].to_list()[:2] == [published.THIS_RUN] * 2
    assert (rsna["source"][2:] == published.PUBLISHED).all() and len(rsna) == 2 + 10 * 3 + 15 * 3
    assert set(comparison["dataset"]) == {"rsna", "covidx", "siim"}  # only what the paper reports
    assert "macro_f1" not in comparison["metric"]


def test_parameters_put_each_trained_adaptor_beside_the_published_counts() -> None:
    pretraining = pl.DataFrame(
        {
            "image_encoder": ["e"],
            "text_encoder": ["t"],
            "mode": ["pooled"],
            "trainable_parameters": [3_000_000],
            "frozen_parameters": [9_000_000],
        }
    )
    table = published.parameters(pretraining)
    assert table.row(0, named=True) == {
        "source": published.THIS_RUN,
        "method": "Adaptor (pooled)",
        "image_encoder": "e",
        "text_encoder": "t",
        "trainable_min": 3_000_000,
        "trainable_max": 3_000_000,
        "frozen": 9_000_000,
        "exact": True,
        "trainable_share": 0.25,
    }
    assert len(table) == 1 + len(published.published_parameters())
    assert table.filter(~pl.col("exact"))["trainable_share"].to_list() == [1.0]  # end to end trains all
