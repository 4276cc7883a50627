"""Label-efficiency and zero-shot figures from known tables: valid SVG and PNG files, named as the
workflow expects, one series per method (per encoder pair when there are several) or per Adaptor;
and every figure the workflow lists drawn by draw_all."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import polars as pl
import pytest

from adaptor.results.figure_files import FORMATS, figure_entries, label_efficiency_names
from adaptor.results.figures import draw_all, label_efficiency, zeroshot_per_class
from adaptor.results.tables import SUMMARY_KEYS

FRACTIONS = (0.01, 0.1, 1.0)


def _cells(
    dataset: str, task: str, metrics: dict[str, float], models: list[tuple[str, str, str | None]]
) -> list[dict]:
    return [
        dict(
            zip(SUMMARY_KEYS, (dataset, task, "strict", method, image, text, fraction, metric), strict=True),
            mean=base + 0.1 * fraction,
            std=0.02,
            seeds=3,
        )
        for method, image, text in models
        for fraction in FRACTIONS
        for metric, base in metrics.items()
    ]


@pytest.fixture
def summary() -> pl.DataFrame:
    one_pair = [("adaptor", "e", "t"), ("frozen", "e", None), ("random", "e", None)]
    two_pairs = [*one_pair, ("adaptor", "e", "u")]
    rows = _cells("rsna", "binary", {"auroc": 0.7}, one_pair)
    rows += _cells("covidx", "multiclass", {"accuracy": 0.6, "macro_f1": 0.5}, two_pairs)
    rows += _cells(
        "siim",
        "segmentation",
        {"dice_mgca": 0.6, "dice_positive": 0.3, "dice_empty_predictor": 0.55},
        one_pair,
    )
    return pl.DataFrame(rows)


def test_each_figure_is_a_valid_svg_and_png_named_as_the_workflow_expects(
    summary: pl.DataFrame, tmp_path: Path
) -> None:
    figures = label_efficiency(summary, ["rsna", "covidx"], ["siim"], tmp_path)
    expected = label_efficiency_names(["rsna", "covidx"], ["siim"])
    assert [figure.name for figure in figures] == expected
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        f"{n}.{e}" for n in expected for e in FORMATS
    )
    for name in expected:
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        root = ET.parse(tmp_path / f"{name}.svg").getroot()
        assert root.tag.endswith("svg")


def test_series_are_the_methods_and_the_primary_metric(summary: pl.DataFrame, tmp_path: Path) -> None:
    rsna, covidx, siim = label_efficiency(summary, ["rsna", "covidx"], ["siim"], tmp_path)
    assert rsna.series == {"auroc": ["adaptor", "frozen", "random"]}
    # Two encoder pairs: each line names its encoders; multiclass plots accuracy.
    assert covidx.series == {"accuracy": ["adaptor (e/t)", "adaptor (e/u)", "frozen (e)", "random (e)"]}
    assert siim.series == {
        "dice_mgca": ["adaptor", "frozen", "random"],
        "dice_positive": ["adaptor", "frozen", "random"],
    }


def test_the_svg_draws_one_line_per_series(summary: pl.DataFrame, tmp_path: Path) -> None:
    """Read back from the file: one legend entry per series (and the empty predictor's dashed line)."""
    label_efficiency(summary, ["rsna"], ["siim"], tmp_path)
    rsna = (tmp_path / "label_efficiency_rsna_classification.svg").read_text()
    siim = (tmp_path / "label_efficiency_siim_segmentation.svg").read_text()
    for label in ("adaptor", "frozen", "random"):
        assert f"<!-- {label} -->" in rsna
    assert siim.count("<!-- empty predictor -->") == 1


def test_a_dataset_without_cells_is_an_error(summary: pl.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no classification cells of 'chexpert'"):
        label_efficiency(summary, ["chexpert"], [], tmp_path)


def _zeroshot() -> pl.DataFrame:
    rows = []
    for image, text in (("e", "t"), ("e@random", "t")):
        for metric, value in (("auroc/Pneumonia", 0.7), ("auroc/Edema", 0.6), ("auroc", 0.65)):
            rows.append(
                {
                    "dataset": "chexpert",
                    "method": "adaptor",
                    "image_encoder": image,
                    "text_encoder": text,
                    "metric": metric,
                    "value": value,
                    "ci_low": value - 0.1,
                    "ci_high": value + 0.05,
                }
            )
    return pl.DataFrame(rows)


def test_zeroshot_draws_each_class_with_its_interval_per_adaptor(tmp_path: Path) -> None:
    figure = zeroshot_per_class(_zeroshot(), "chexpert", tmp_path)
    assert figure.name == "zeroshot_chexpert" and figure.series == {"auroc": ["e/t", "e@random/t"]}
    svg = (tmp_path / "zeroshot_chexpert.svg").read_text()
    for label in ("e/t", "e@random/t", "chance", "Edema", "Pneumonia", "mean"):
        assert f"<!-- {label} -->" in svg, label
    with pytest.raises(ValueError, match="no AUROC of 'rsna'"):
        zeroshot_per_class(_zeroshot(), "rsna", tmp_path)


def test_draw_all_writes_every_figure_the_workflow_lists(summary: pl.DataFrame, tmp_path: Path) -> None:
    keys = ("image_encoder", "text_encoder", "mode")
    adaptor = dict(zip(keys, ("e", "t", "pooled"), strict=True))
    tables = {
        "summary": summary,
        "zeroshot": _zeroshot().with_columns(dataset=pl.lit("rsna")),
        "pretraining": pl.DataFrame(
            [adaptor | {"best_epoch": 0, "best_val_loss": 3.0, "chance_val_loss": 3.4}]
        ),
        "pretraining_curves": pl.DataFrame([adaptor | {"epoch": 0, "train_loss": 3.2, "val_loss": 3.0}]),
        "retrieval": pl.DataFrame(
            [adaptor | {"direction": "image_to_text", "k": 1, "recall": 0.2, "chance": 0.1}]
        ),
    }
    drawn = draw_all(tables, ["rsna", "covidx"], ["siim"], ["rsna"], tmp_path)
    listed = [entry.name for entry in figure_entries(["rsna", "covidx"], ["siim"], ["rsna"])]
    assert sorted(figure.name for figure in drawn) == sorted(listed) and len(listed) == 3 * 2 + 1 + 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.{e}" for n in listed for e in FORMATS)
