"""The figures' and report tables' file names, known before any is drawn: the workflow lists them as
outputs and files each under a category of Snakemake's HTML report, with its caption.

Standard library only, so the Snakefile can import it without the plotting stack."""

from __future__ import annotations

from dataclasses import dataclass

FORMATS = ("svg", "png")
# The tables (results/tables/<name>.parquet) the figures are drawn from.
FIGURE_TABLES = ("summary", "zeroshot", "pretraining", "pretraining_curves", "retrieval")
# The tables shown in the HTML report, one HTML file each: (report category, the name shown).
REPORT_TABLES = {
    "published": ("Published", "this run beside the paper's numbers"),
    "parameters": ("Cost", "trainable and frozen parameters"),
    "wall_time": ("Cost", "wall time per stage"),
    "cache_dividend": ("Cost", "cache dividend"),
    "classification": ("Classification", "classification table"),
    "segmentation": ("Segmentation", "segmentation table"),
    "zeroshot": ("Zero-shot", "zero-shot table"),
    "pretraining": ("Pre-training", "pre-trained Adaptors"),
    "retrieval": ("Pre-training", "retrieval table"),
    "software": ("Provenance", "software that made the results"),
}


@dataclass(frozen=True)
class ReportEntry:
    """A file in the HTML report: its name without extension, caption file (in ``report/``), category,
    subcategory, and the name the report lists it by."""

    name: str
    caption: str
    category: str
    subcategory: str
    title: str


def label_efficiency_name(dataset: str, task: str) -> str:
    """A label-efficiency figure's file name without extension (task: classification or segmentation)."""
    return f"label_efficiency_{dataset}_{task}"


def encoder_grid_name(dataset: str, task: str) -> str:
    """An encoder grid's file name without extension (task: classification or segmentation)."""
    return f"encoder_grid_{dataset}_{task}"


def zeroshot_name(dataset: str) -> str:
    return f"zeroshot_{dataset}"


PRETRAINING_LOSS = "pretraining_loss"
RETRIEVAL_RECALL = "retrieval_recall"
PRETRAINING_FIGURES = (PRETRAINING_LOSS, RETRIEVAL_RECALL)


def label_efficiency_names(classification: list[str], segmentation: list[str]) -> list[str]:
    """The label-efficiency figures drawn for these datasets, without extension."""
    return [label_efficiency_name(d, "classification") for d in classification] + [
        label_efficiency_name(d, "segmentation") for d in segmentation
    ]


def figure_entries(
    classification: list[str], segmentation: list[str], zeroshot: list[str]
) -> list[ReportEntry]:
    """Every figure the figures rule draws."""
    entries = []
    for task, datasets in (("classification", classification), ("segmentation", segmentation)):
        category = task.capitalize()
        for d in datasets:
            entries += [
                ReportEntry(
                    label_efficiency_name(d, task),
                    f"label_efficiency_{task}.rst",
                    category,
                    d,
                    "label efficiency",
                ),
                ReportEntry(
                    encoder_grid_name(d, task), f"encoder_grid_{task}.rst", category, d, "encoder grid"
                ),
            ]
    entries += [
        ReportEntry(zeroshot_name(d), "zeroshot.rst", "Zero-shot", d, "AUROC per class") for d in zeroshot
    ]
    entries += [
        ReportEntry(PRETRAINING_LOSS, f"{PRETRAINING_LOSS}.rst", "Pre-training", "figures", "loss per epoch"),
        ReportEntry(RETRIEVAL_RECALL, f"{RETRIEVAL_RECALL}.rst", "Pre-training", "figures", "Recall@K"),
    ]
    return entries


def table_entries() -> list[ReportEntry]:
    """Every table the report rule writes for the HTML report."""
    return [
        ReportEntry(name, f"table_{name}.rst", category, "tables", title)
        for name, (category, title) in REPORT_TABLES.items()
    ]
