"""Pre-training as figures: the contrastive loss per epoch against its chance level, and retrieval
Recall@K on the held-out pairs against chance."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from matplotlib.figure import Figure

from adaptor.results.figure_files import PRETRAINING_LOSS, RETRIEVAL_RECALL
from adaptor.results.plotting import FigureFiles, legend, save

ADAPTOR_KEYS = ["image_encoder", "text_encoder", "mode"]


def _label(row: dict[str, object]) -> str:
    return f"{row['image_encoder']}/{row['text_encoder']} ({row['mode']})"


def loss_curves(pretraining: pl.DataFrame, curves: pl.DataFrame, out_dir: Path) -> FigureFiles:
    """Train (dashed) and validation (solid) loss per epoch, one colour per Adaptor, its best epoch
    circled; each chance level (the loss of uniform logits) dotted grey."""
    figure = Figure(figsize=(6, 4))
    axes = figure.add_subplot()
    labels = []
    for adaptor in pretraining.sort(ADAPTOR_KEYS).iter_rows(named=True):
        history = curves.filter(*(pl.col(k) == adaptor[k] for k in ADAPTOR_KEYS)).sort("epoch")
        label = _label(adaptor)
        epochs = (history["epoch"] + 1).to_list()
        (val,) = axes.plot(epochs, history["val_loss"].to_list(), label=f"{label} validation")
        axes.plot(
            epochs,
            history["train_loss"].to_list(),
            linestyle="--",
            color=val.get_color(),
            label=f"{label} train",
        )
        axes.plot(
            adaptor["best_epoch"] + 1,
            adaptor["best_val_loss"],
            marker="o",
            fillstyle="none",
            markersize=10,
            color=val.get_color(),
        )
        labels += [f"{label} validation", f"{label} train"]
    for chance in sorted(pretraining["chance_val_loss"].unique().to_list()):
        axes.axhline(chance, color="grey", linestyle=":", label=f"chance ({chance:.2f})")
    axes.set_xlabel("epoch")
    axes.set_ylabel("contrastive loss")
    axes.set_title("Pre-training: loss per epoch (circled: the checkpoint kept)", fontsize=10)
    legend(axes)
    axes.grid(alpha=0.3)
    return FigureFiles(PRETRAINING_LOSS, {"loss": labels}, save(figure, out_dir, PRETRAINING_LOSS))


def recall_at_k(retrieval: pl.DataFrame, out_dir: Path) -> FigureFiles:
    """Recall@K against K for each direction, one line per Adaptor, chance (K / pairs) dashed."""
    directions = sorted(retrieval["direction"].unique().to_list())
    figure = Figure(figsize=(5 * len(directions), 4))
    panels = figure.subplots(1, len(directions), squeeze=False, sharey=True)[0]
    series = {}
    for axes, direction in zip(panels, directions, strict=True):
        rows = retrieval.filter(pl.col("direction") == direction)
        labels = []
        for adaptor in rows.select(ADAPTOR_KEYS).unique().sort(ADAPTOR_KEYS).iter_rows(named=True):
            line = rows.filter(*(pl.col(k) == adaptor[k] for k in ADAPTOR_KEYS)).sort("k")
            axes.plot(line["k"].to_list(), line["recall"].to_list(), marker="o", label=_label(adaptor))
            labels.append(_label(adaptor))
        chance = rows.group_by("k").agg(pl.col("chance").max()).sort("k")
        axes.plot(chance["k"].to_list(), chance["chance"].to_list(), "--", color="grey", label="chance")
        axes.set_xticks(chance["k"].to_list())
        axes.set_xlabel("K")
        axes.set_ylabel("Recall@K")
        axes.set_title(f"{direction.replace('_', ' ')} on the validation pairs", fontsize=10)
        legend(axes)
        axes.grid(alpha=0.3)
        series[direction] = labels
    return FigureFiles(RETRIEVAL_RECALL, series, save(figure, out_dir, RETRIEVAL_RECALL))


def pretraining(
    pretraining: pl.DataFrame, curves: pl.DataFrame, retrieval: pl.DataFrame, out_dir: str | Path
) -> list[FigureFiles]:
    """The pre-training figures the workflow lists (``PRETRAINING_FIGURES``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [loss_curves(pretraining, curves, out_dir), recall_at_k(retrieval, out_dir)]
