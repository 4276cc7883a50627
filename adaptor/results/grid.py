"""The encoder grid, in the shape of the paper's Tables 2-3: for each dataset and label fraction, the
Adaptor's score for every image x text encoder pair, with the image encoder alone beside each row."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
from matplotlib.figure import Figure

from adaptor.config import ADAPTOR_MODES, twin_base
from adaptor.evaluate.metrics import primary_metric
from adaptor.results.figure_files import encoder_grid_name
from adaptor.results.plotting import FigureFiles, save

# Segmentation's grid scores images that have a mask: under MGCA's Dice an empty prediction on the
# many empty masks scores 1, which would hide the differences between encoders.
SEGMENTATION_METRIC = "dice_positive"
ALONE = "encoder alone"


def _row_name(method: str, image_encoder: str) -> str:
    return image_encoder if method == "adaptor" else f"{image_encoder} ({method})"


def grid_table(cells: pl.DataFrame, fraction: float) -> tuple[list[str], list[str], np.ndarray]:
    """Rows (each Adaptor method's image encoders), columns (text encoders, then the encoder alone)
    and their means at ``fraction``; NaN where no cell was run. The encoder alone of a random twin
    is the ``random`` method on its base encoder."""
    at = cells.filter(pl.col("fraction") == fraction)
    adaptors = at.filter(pl.col("method").is_in(list(ADAPTOR_MODES)))
    rows = adaptors.select("method", "image_encoder").unique().sort("method", "image_encoder").rows()
    texts = sorted(adaptors["text_encoder"].unique().to_list())
    values = np.full((len(rows), len(texts) + 1), np.nan)
    means = {
        (m, i, t): v for m, i, t, v in at.select("method", "image_encoder", "text_encoder", "mean").rows()
    }
    for r, (method, image) in enumerate(rows):
        for c, text in enumerate(texts):
            values[r, c] = means.get((method, image, text), np.nan)
        base = twin_base(image)
        alone = ("random", base, None) if base is not None else ("frozen", image, None)
        values[r, -1] = means.get(alone, np.nan)
    return [_row_name(m, i) for m, i in rows], [*texts, ALONE], values


def _grid(summary: pl.DataFrame, dataset: str, task: str, out_dir: Path) -> FigureFiles:
    segmentation = task == "segmentation"
    cells = summary.filter(pl.col("dataset") == dataset, (pl.col("task") == "segmentation") == segmentation)
    if cells.is_empty():
        raise ValueError(f"summary has no {task} cells of {dataset!r}")
    metric = SEGMENTATION_METRIC if segmentation else primary_metric(str(cells["task"][0]))
    cells = cells.filter(pl.col("metric") == metric)
    fractions = sorted(cells["fraction"].unique().to_list())
    tables = [grid_table(cells, fraction) for fraction in fractions]
    finite = np.concatenate([values[np.isfinite(values)] for _, _, values in tables])
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    rows, columns, _ = tables[0]
    # One panel per fraction, stacked: the same cell sits in the same place in each, read downwards.
    height = 1.4 + len(fractions) * (0.5 + 0.45 * len(rows))
    figure = Figure(figsize=(2.8 + 1.25 * len(columns), height), layout="constrained")
    panels = figure.subplots(len(fractions), 1, squeeze=False, sharex=True)[:, 0]
    series = {}
    for axes, fraction, (rows, columns, values) in zip(panels, fractions, tables, strict=True):
        image = axes.imshow(values, cmap="viridis", vmin=low, vmax=high, aspect="auto")
        for (r, c), value in np.ndenumerate(values):
            text = "not run" if math.isnan(value) else f"{value:.3f}"
            shade = "white" if math.isnan(value) or value < (low + high) / 2 else "black"
            axes.text(c, r, text, ha="center", va="center", fontsize=8, color=shade)
        axes.axvline(len(columns) - 1.5, color="white", linewidth=4)  # the encoder alone stands apart
        axes.set_xticks(range(len(columns)), columns, rotation=20, ha="right", fontsize=8)  # bottom only
        axes.set_yticks(range(len(rows)), rows, fontsize=8)
        axes.set_title(f"{fraction * 100:g} % labels", fontsize=9, loc="left")
        series[f"{fraction:g}"] = [f"{row} + {column}" for row in rows for column in columns]
    figure.supylabel("image encoder", fontsize=9)
    figure.supxlabel(
        "text encoder of the Adaptor; right of the white line, the image encoder alone", fontsize=8
    )
    figure.colorbar(image, ax=list(panels), label=metric, shrink=0.9)
    figure.suptitle(f"{dataset}: {metric} per image x text encoder (mean over seeds)", fontsize=10)
    name = encoder_grid_name(dataset, task)
    return FigureFiles(name, series, save(figure, out_dir, name))


def encoder_grids(
    summary: pl.DataFrame, classification: list[str], segmentation: list[str], out_dir: str | Path
) -> list[FigureFiles]:
    """One grid figure per dataset and task, a panel per label fraction."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [_grid(summary, d, "classification", out_dir) for d in classification] + [
        _grid(summary, d, "segmentation", out_dir) for d in segmentation
    ]
