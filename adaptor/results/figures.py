"""Figures of the results, as the field reads them: a metric against the label fraction, one line
per method, the seeds' spread as a band; zero-shot AUROC per class with its interval. Written as SVG
and PNG from the result tables; :func:`draw_all` draws every figure the workflow lists."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from adaptor.evaluate.metrics import primary_metric
from adaptor.results import grid, training_figures
from adaptor.results.figure_files import label_efficiency_name, zeroshot_name
from adaptor.results.plotting import FigureFiles, legend, method_rank, reproducible, save

SEGMENTATION_PANELS = {
    "dice_mgca": "Dice (MGCA: an empty mask predicted empty scores 1)",
    "dice_positive": "Dice on images with a mask",
}
EMPTY_PREDICTOR = "dice_empty_predictor"


def _series_label(row: dict[str, object], several_encoders: bool) -> str:
    if not several_encoders:
        return str(row["method"])
    text = f"/{row['text_encoder']}" if row["text_encoder"] else ""
    return f"{row['method']} ({row['image_encoder']}{text})"


def _draw(axes: Axes, cells: pl.DataFrame) -> list[str]:
    """One line per (method, encoders) over the fractions, mean over seeds with a ±1 std band."""
    keys = ["method", "image_encoder", "text_encoder"]
    models = cells.select(keys).unique().sort(method_rank(), "image_encoder", "text_encoder", nulls_last=True)
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


def _classification(summary: pl.DataFrame, dataset: str, out_dir: Path) -> FigureFiles:
    cells = summary.filter(pl.col("dataset") == dataset, pl.col("task") != "segmentation")
    if cells.is_empty():
        raise ValueError(f"summary has no classification cells of {dataset!r}")
    metric = primary_metric(str(cells["task"][0]))
    figure = Figure(figsize=(7, 4.5))
    axes = figure.add_subplot()
    series = _draw(axes, cells.filter(pl.col("metric") == metric))
    shown = metric.upper() if metric == "auroc" else metric
    axes.set_ylabel(shown)
    axes.set_title(f"{dataset}: {shown} against labelled data (mean ± std over seeds)", fontsize=10)
    legend(axes)
    name = label_efficiency_name(dataset, "classification")
    return FigureFiles(name, {metric: series}, save(figure, out_dir, name))


def _segmentation(summary: pl.DataFrame, dataset: str, out_dir: Path) -> FigureFiles:
    cells = summary.filter(pl.col("dataset") == dataset, pl.col("task") == "segmentation")
    if cells.is_empty():
        raise ValueError(f"summary has no segmentation cells of {dataset!r}")
    figure = Figure(figsize=(11, 4), layout="constrained")
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
    # Both panels draw the same lines: one legend, beside them (the first panel's has the empty predictor).
    figure.legend(*figure.axes[0].get_legend_handles_labels(), loc="outside right upper", fontsize=8)
    name = label_efficiency_name(dataset, "segmentation")
    return FigureFiles(name, series, save(figure, out_dir, name))


def label_efficiency(
    summary: pl.DataFrame, classification: list[str], segmentation: list[str], out_dir: str | Path
) -> list[FigureFiles]:
    """One label-efficiency figure per classification dataset (its primary metric) and per
    segmentation dataset (MGCA's and positive-only Dice, the empty predictor dashed)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with reproducible():
        return [_classification(summary, d, out_dir) for d in classification] + [
            _segmentation(summary, d, out_dir) for d in segmentation
        ]


def _adaptor_label(row: dict[str, object]) -> str:
    mode = " tokens" if row["method"] == "adaptor_tokens" else ""
    return f"{row['image_encoder']}/{row['text_encoder']}{mode}"


def zeroshot_per_class(zeroshot: pl.DataFrame, dataset: str, out_dir: str | Path) -> FigureFiles:
    """Zero-shot AUROC of each class and their mean, one marker per Adaptor with its 95 % bootstrap
    interval as an error bar; chance (0.5) dashed."""
    cells = zeroshot.filter(pl.col("dataset") == dataset, pl.col("metric").str.starts_with("auroc"))
    if cells.is_empty():
        raise ValueError(f"zero-shot table has no AUROC of {dataset!r}")
    classes = sorted(m.removeprefix("auroc/") for m in cells["metric"].unique() if m != "auroc")
    ticks = [*classes, "mean"] if "auroc" in cells["metric"] else classes
    models = (
        cells.select("method", "image_encoder", "text_encoder")
        .unique()
        .sort(method_rank(), "image_encoder", "text_encoder")
    )
    figure = Figure(figsize=(max(5.0, 1.1 * len(ticks) + 2), 4))
    axes = figure.add_subplot()
    width = 0.8 / len(models)
    labels = []
    for index, model in enumerate(models.iter_rows(named=True)):
        rows = {
            (r["metric"].removeprefix("auroc/") if r["metric"] != "auroc" else "mean"): r
            for r in cells.filter(**model).iter_rows(named=True)
        }
        shown = [t for t in ticks if t in rows]
        x = [ticks.index(t) - 0.4 + width * (index + 0.5) for t in shown]
        value = [rows[t]["value"] for t in shown]
        below = [rows[t]["value"] - rows[t]["ci_low"] for t in shown]
        above = [rows[t]["ci_high"] - rows[t]["value"] for t in shown]
        label = _adaptor_label(model)
        axes.errorbar(x, value, yerr=[below, above], fmt="o", capsize=3, label=label)
        labels.append(label)
    axes.axhline(0.5, color="grey", linestyle="--", label="chance")
    axes.set_xticks(range(len(ticks)), ticks, rotation=20, ha="right")
    axes.set_ylim(0, 1)
    axes.set_ylabel("AUROC (95 % bootstrap interval)")
    axes.set_title(f"{dataset}: zero-shot AUROC per class, from one prompt pair each", fontsize=10)
    legend(axes)
    axes.grid(axis="y", alpha=0.3)
    name = zeroshot_name(dataset)
    return FigureFiles(name, {"auroc": labels}, save(figure, Path(out_dir), name))


def draw_all(
    tables: dict[str, pl.DataFrame],
    classification: list[str],
    segmentation: list[str],
    zeroshot: list[str],
    out_dir: str | Path,
) -> list[FigureFiles]:
    """Every figure of a run from its tables (``summary``, ``zeroshot``, ``pretraining``,
    ``pretraining_curves``, ``retrieval``), the files :func:`figure_entries` names."""
    out_dir = Path(out_dir)
    drawn = label_efficiency(tables["summary"], classification, segmentation, out_dir)
    with reproducible():
        drawn += grid.encoder_grids(tables["summary"], classification, segmentation, out_dir)
        drawn += [zeroshot_per_class(tables["zeroshot"], d, out_dir) for d in zeroshot]
        drawn += training_figures.pretraining(
            tables["pretraining"], tables["pretraining_curves"], tables["retrieval"], out_dir
        )
    return drawn
