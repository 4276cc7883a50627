"""What every figure shares: the methods' order, the files written, reproducible bytes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import matplotlib as mpl
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from adaptor.results.figure_files import FORMATS

METHOD_ORDER = ("adaptor", "adaptor_tokens", "frozen", "random")


@dataclass(frozen=True)
class FigureFiles:
    """One figure: its name, the series each panel draws (what a test reads back), the files written."""

    name: str
    series: dict[str, list[str]]
    files: list[Path]


def method_rank() -> pl.Expr:
    """The methods in the order the figures draw them, any other after them."""
    return pl.col("method").replace_strict(
        METHOD_ORDER, list(range(len(METHOD_ORDER))), default=len(METHOD_ORDER)
    )


@contextmanager
def reproducible() -> Iterator[None]:
    """SVG element ids from a fixed salt, so the same results draw the same bytes."""
    with mpl.rc_context({"svg.hashsalt": "adaptor"}):
        yield


def legend(axes: Axes) -> None:
    """Inside the axes for a few entries; right of them for more, where it hides no line."""
    if len(axes.get_legend_handles_labels()[1]) <= 4:
        axes.legend(fontsize=8)
    else:
        axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def save(figure: Figure, out_dir: Path, name: str) -> list[Path]:
    """The figure as one file per format, with no creation date in them."""
    files = []
    for extension in FORMATS:
        path = out_dir / f"{name}.{extension}"
        metadata = {"Date": None} if extension == "svg" else {"Software": None}
        figure.savefig(path, metadata=metadata, bbox_inches="tight", dpi=150)
        files.append(path)
    return files
