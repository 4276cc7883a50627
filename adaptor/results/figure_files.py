"""The figures' file names, known before any is drawn: the workflow lists them as outputs.

Standard library only, so the Snakefile can import it without the plotting stack."""

from __future__ import annotations

FORMATS = ("svg", "png")


def label_efficiency_name(dataset: str, task: str) -> str:
    """A label-efficiency figure's file name without extension (task: classification or segmentation)."""
    return f"label_efficiency_{dataset}_{task}"


def label_efficiency_names(classification: list[str], segmentation: list[str]) -> list[str]:
    """The label-efficiency figures drawn for these datasets, without extension."""
    return [label_efficiency_name(d, "classification") for d in classification] + [
        label_efficiency_name(d, "segmentation") for d in segmentation
    ]
