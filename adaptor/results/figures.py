"""Figures of the results, as the field reads them: a metric against the label fraction, one line
per method, the seeds' spread as a band. Written as SVG and PNG from ``summary.parquet``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib as mpl
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from adaptor.evaluate.metrics import primary_metric
from adaptor.results.figure_files import FORMATS, label_efficiency_name

METHOD_ORDER = ("adaptor", "adaptor_tokens", "frozen", "random")
SEGMENTATION_PANELS = {
    "dice_mgca": "Dice (MGCA: an empty mask predicted empty scores 1)",
    "dice_positive": "Dice on images with a mask",
}
EMPTY_PREDICTOR = "dice_empty_predictor"


@dataclass(frozen=True)
class FigureFiles:
    """One figure: its name, the series each panel draws, and the files written."""

    name: str
    series: dict[str, list[str]]
    files: list[Path]


def _series_label(row: dict[str, object], several_encoders: bool) -> str:
    if not several_encoders:
        return str(row["method"])
    text = f"/{row['text_encoder']}" if row["text_encoder"] else ""
    return f"{row['method']} ({row['image_encoder']}{text})"


def _draw(axes: Axes, cells: pl.DataFrame) -> list[str]:
    """One line per (method, encoders) over the fractions, mean over seeds with a ±1 std band."""
    keys = ["method", "image_encoder", "text_encoder"]
    models = (
        cells.select(keys)
        .unique()
        .sort(
            pl.col("method").replace_strict(
                METHOD_ORDER, list(range(len(METHOD_ORDER))), default=len(METHOD_ORDER)
            ),
            "image_encoder",
            "text_encoder",
            nulls_last=True,
        )
    )
    several = models["method"].is_duplicated().any()  # a method on more than one encoder pair
    labels = []
    for model in models.iter_rows(named=True):
        line = cells.join(pl.DataFrame([model], schema=cells.select(keys).schema), on=keys, nulls_equal=True)
        line = line.sort("fraction")
        percent = (line["fraction"] * 100).to_list()
        mean = line["mean"].to_list()
        spread = line["std"].fill_null(0.0).to_list()
        label = _series_label(model, several)
        (drawn,) = axes.plot(percent, mean, marker="o", label=label)
        # Every metric drawn lies in [0, 1]; so does its band.
        low = [max(0.0, m - s) for m, s in zip(mean, spread, strict=True)]
        high = [min(1.0, m + s) for m, s in zip(mean, spread, strict=True)]
        axes.fill_between(percent, low, high, color=drawn.get_color(), alpha=0.2, linewidth=0)
        labels.append(label)
    axes.set_xscale("log")
    axes.set_xticks([1, 10, 100], ["1 %", "10 %", "100 %"])
    axes.set_xlabel("labelled training data")
    axes.grid(alpha=0.3)
    return labels


def _save(figure: Figure, out_dir: Path, name: str) -> list[Path]:
    files = []
    for extension in FORMATS:
        path = out_dir / f"{name}.{extension}"
        # No creation date in the files, so the same results give the same bytes.
        metadata = {"Date": None} if extension == "svg" else {"Software": None}
        figure.savefig(path, metadata=metadata, bbox_inches="tight", dpi=150)
        files.append(path)
    return files


def _classification(summary: pl.DataFrame, dataset: str, out_dir: Path) -> FigureFiles:
    cells = summary.filter(pl.col("dataset") == dataset, pl.col("task") != "segmentation")
    if cells.is_empty():
        raise ValueError(f"summary has no classification cells of {dataset!r}")
    metric = primary_metric(str(cells["task"][0]))
    figure = Figure(figsize=(5.5, 4))
    axes = figure.add_subplot()
    series = _draw(axes, cells.filter(pl.col("metric") == metric))
    shown = metric.upper() if metric == "auroc" else metric
    axes.set_ylabel(shown)
    axes.set_title(f"{dataset}: {shown} against labelled data (mean ± std over seeds)", fontsize=10)
    axes.legend(fontsize=8)
    name = label_efficiency_name(dataset, "classification")
    return FigureFiles(name, {metric: series}, _save(figure, out_dir, name))


def _segmentation(summary: pl.DataFrame, dataset: str, out_dir: Path) -> FigureFiles:
    cells = summary.filter(pl.col("dataset") == dataset, pl.col("task") == "segmentation")
    if cells.is_empty():
        raise ValueError(f"summary has no segmentation cells of {dataset!r}")
    figure = Figure(figsize=(10, 4))
    series = {}
    for index, (metric, title) in enumerate(SEGMENTATION_PANELS.items()):
        axes = figure.add_subplot(1, len(SEGMENTATION_PANELS), index + 1)
        series[metric] = _draw(axes, cells.filter(pl.col("metric") == metric))
        if metric == "dice_mgca":
            # The empty predictor's score depends on the test set alone: one level for every cell.
            empty = cells.filter(pl.col("metric") == EMPTY_PREDICTOR)["mean"].to_list()
            if empty:
                axes.axhline(sum(empty) / len(empty), color="grey", linestyle="--", label="empty predictor")
        axes.set_ylabel("Dice")
        axes.set_title(f"{dataset}: {title}", fontsize=10)
        axes.legend(fontsize=8)
    name = label_efficiency_name(dataset, "segmentation")
    return FigureFiles(name, series, _save(figure, out_dir, name))


def label_efficiency(
    summary: pl.DataFrame, classification: list[str], segmentation: list[str], out_dir: str | Path
) -> list[FigureFiles]:
    """One label-efficiency figure per classification dataset (its primary metric) and per
    segmentation dataset (MGCA's and positive-only Dice, the empty predictor dashed)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with mpl.rc_context({"svg.hashsalt": "adaptor"}):
        return [_classification(summary, d, out_dir) for d in classification] + [
            _segmentation(summary, d, out_dir) for d in segmentation
        ]
