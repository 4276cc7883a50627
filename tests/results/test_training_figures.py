"""Pre-training figures from known tables: one curve pair per Adaptor with chance marked, one
Recall@K line per Adaptor and direction with chance, read back from the SVG."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from adaptor.results.figure_files import FORMATS, PRETRAINING_FIGURES
from adaptor.results.training_figures import pretraining

ADAPTORS = [("e", "t", "pooled"), ("e", "t", "tokens")]


def _tables() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    keys = ("image_encoder", "text_encoder", "mode")
    summary = pl.DataFrame(
        [
            dict(zip(keys, a, strict=True), best_epoch=1, best_val_loss=3.0, chance_val_loss=3.47)
            for a in ADAPTORS
        ]
    )
    curves = pl.DataFrame(
        [
            dict(zip(keys, a, strict=True), epoch=e, train_loss=3.4 - 0.2 * e, val_loss=3.3 - 0.1 * e)
            for a in ADAPTORS
            for e in range(3)
        ]
    )
    retrieval = pl.DataFrame(
        [
            dict(zip(keys, a, strict=True), direction=d, k=k, recall=0.1 * k, chance=k / 32, n_pairs=32)
            for a in ADAPTORS
            for d in ("image_to_text", "text_to_image")
            for k in (1, 5)
        ]
    )
    return summary, curves, retrieval


def test_the_pretraining_figures_are_the_listed_files_with_a_series_per_adaptor(tmp_path: Path) -> None:
    loss, recall = pretraining(*_tables(), tmp_path)
    assert [loss.name, recall.name] == list(PRETRAINING_FIGURES)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{n}.{e}" for n in PRETRAINING_FIGURES for e in FORMATS
    )
    assert loss.series["loss"] == [
        "e/t (pooled) validation",
        "e/t (pooled) train",
        "e/t (tokens) validation",
        "e/t (tokens) train",
    ]
    assert recall.series == {d: ["e/t (pooled)", "e/t (tokens)"] for d in ("image_to_text", "text_to_image")}
    svg = (tmp_path / "pretraining_loss.svg").read_text()
    assert all(f"<!-- {label} -->" in svg for label in loss.series["loss"])
    assert svg.count("<!-- chance (3.47) -->") == 1  # one level for both: the same batch size
    recall_svg = (tmp_path / "retrieval_recall.svg").read_text()
    assert recall_svg.count("<!-- e/t (tokens) -->") == 2 and recall_svg.count("<!-- chance -->") == 2
