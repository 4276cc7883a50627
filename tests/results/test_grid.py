"""The encoder grid: which cell holds which mean, the encoder alone beside each row (a random twin's
is the random floor of its base), and the figure's panels read back from the SVG."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import polars as pl
import pytest

from adaptor.results.grid import ALONE, encoder_grids, grid_table
from adaptor.results.tables import SUMMARY_KEYS

MODELS = {
    ("adaptor", "e", "t"): 0.80,
    ("adaptor", "e", "u"): 0.81,
    ("adaptor", "e@random", "t"): 0.60,
    ("frozen", "e", None): 0.75,
    ("random", "e", None): 0.55,
}


@pytest.fixture
def summary() -> pl.DataFrame:
    rows = []
    for (method, image, text), value in MODELS.items():
        for fraction in (0.01, 1.0):
            for task, metric in (("binary", "auroc"), ("segmentation", "dice_positive")):
                cell = ("rsna", task, "strict", method, image, text, fraction, metric)
                rows.append(
                    dict(zip(SUMMARY_KEYS, cell, strict=True), mean=value + fraction / 10, std=0.0, seeds=3)
                )
    return pl.DataFrame(rows)


def test_each_cell_holds_its_pairs_mean_and_the_encoder_alone_its_floor(summary: pl.DataFrame) -> None:
    cells = summary.filter(pl.col("metric") == "auroc")
    rows, columns, values = grid_table(cells, 0.01)
    assert rows == ["e", "e@random"] and columns == ["t", "u", ALONE]
    assert values[0].tolist() == pytest.approx([0.801, 0.811, 0.751])
    assert values[1, 0] == pytest.approx(0.601) and math.isnan(values[1, 1])  # e@random + u: not run
    assert values[1, 2] == pytest.approx(0.551)  # the twin alone is the random floor of e


def test_one_figure_per_dataset_and_task_with_a_panel_per_fraction(
    summary: pl.DataFrame, tmp_path: Path
) -> None:
    classification, segmentation = encoder_grids(summary, ["rsna"], ["rsna"], tmp_path)
    assert classification.name == "encoder_grid_rsna_classification"
    assert list(classification.series) == ["0.01", "1"]
    assert classification.series["1"] == [f"{r} + {c}" for r in ("e", "e@random") for c in ("t", "u", ALONE)]
    assert segmentation.series["0.01"] == classification.series["0.01"]
    # Read back from the file: the heat maps (2 panels and the colour bar) and each cell's label.
    svg = (tmp_path / "encoder_grid_rsna_classification.svg").read_text()
    assert ET.fromstring(svg).tag.endswith("svg") and svg.count("<image ") == 2 + 1
    for label in ("0.801", "0.811", "0.751", "0.601", "not run", "0.551", "0.900", "0.700", "0.650"):
        assert f"<!-- {label} -->" in svg, label
    assert (
        "<!-- rsna: dice_positive per image x text encoder (mean over seeds) -->"
        in (tmp_path / f"{segmentation.name}.svg").read_text()
    )


def test_a_dataset_without_cells_is_an_error(summary: pl.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no classification cells of 'covidx'"):
        encoder_grids(summary, ["covidx"], [], tmp_path)
