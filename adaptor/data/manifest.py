"""The manifest: one row per sample, the single input every later stage reads.

Columns: ``id`` (unique), ``patient``, ``path`` (image), ``text`` (report or null), ``labels``
(list of floats, null for unlabelled pre-training pairs), ``split`` (train / val / test),
``boxes`` (list of [x, y, w, h]), ``mask`` (SIIM run-length strings) and ``rows`` (the label-file
lines the sample was read from: provenance, and the order MGCA's splits are drawn in). The
dataset's task and class names travel in the Parquet schema metadata, so a manifest describes itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from adaptor.errors import ManifestError

TASKS = ("pretrain", "binary", "multiclass", "multilabel", "segmentation")
SPLITS = ("train", "val", "test")
SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "id": pl.String,
    "patient": pl.String,
    "path": pl.String,
    "text": pl.String,
    "labels": pl.List(pl.Float32),
    "split": pl.String,
    "boxes": pl.List(pl.List(pl.Float32)),
    "mask": pl.List(pl.String),
    "rows": pl.List(pl.Int64),
}
REJECT_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "dataset": pl.String,
    "source": pl.String,
    "row": pl.Int64,
    "sample_id": pl.String,
    "reason": pl.String,
    "kind": pl.String,
    "rows": pl.List(pl.Int64),
}


@dataclass
class Rejects:
    """Samples left out, each with the file, row and reason: nothing is lost silently.

    ``kind`` is ``error`` for input that is broken, or ``filtered`` for a sample the protocol
    excludes on purpose (e.g. a report too short after the paper's cleaning). ``rows``: all the
    label-file lines of a rejected sample, where it has several (MGCA's splits count them).
    """

    dataset: str
    rows: list[dict[str, object]] = field(default_factory=list)

    def add(
        self,
        source: str | Path,
        row: int | None,
        sample_id: str | None,
        reason: str,
        kind: str = "error",
        rows: list[int] | None = None,
    ) -> None:
        self.rows.append(
            {
                "dataset": self.dataset,
                "source": str(source),
                "row": row,
                "sample_id": sample_id,
                "reason": reason,
                "kind": kind,
                "rows": rows if rows is not None else None if row is None else [row],
            }
        )

    def errors(self) -> list[dict[str, object]]:
        return [row for row in self.rows if row["kind"] == "error"]

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.rows, schema=REJECT_SCHEMA)


@dataclass(frozen=True)
class ManifestInfo:
    """What a manifest is about: its dataset, task and class names, and what the reader counted in
    the folder (``census``: label-file rows, images, patients; what ``check-data`` compares with the
    published counts)."""

    dataset: str
    task: str
    classes: tuple[str, ...]
    census: Mapping[str, int] = field(default_factory=dict, compare=False)


def build(records: list[dict[str, object]], info: ManifestInfo) -> pl.DataFrame:
    """Make a manifest frame from reader records, filling absent columns with nulls, and check it."""
    frame = pl.DataFrame(records, schema=SCHEMA) if records else pl.DataFrame(schema=SCHEMA)
    validate(frame, info)
    return frame


def validate(frame: pl.DataFrame, info: ManifestInfo) -> None:
    """Check the invariants later stages rely on; raise with the offending ids."""
    if info.task not in TASKS:
        raise ManifestError(f"{info.dataset}: unknown task {info.task!r}")
    duplicated = frame.filter(pl.col("id").is_duplicated())["id"].unique().to_list()
    if duplicated:
        raise ManifestError(f"{info.dataset}: duplicate sample ids {duplicated[:5]}")
    bad_split = frame.filter(~pl.col("split").is_in(SPLITS))["id"].to_list()
    if bad_split:
        raise ManifestError(f"{info.dataset}: samples with a split outside {SPLITS}: {bad_split[:5]}")
    if info.task != "pretrain":
        width = frame["labels"].list.len()
        expected = 1 if info.task in ("binary", "multiclass", "segmentation") else len(info.classes)
        wrong = frame.filter(width != expected)["id"].to_list()
        if wrong:
            raise ManifestError(f"{info.dataset}: samples without {expected} label value(s): {wrong[:5]}")
    elif frame["text"].is_null().any():
        raise ManifestError(f"{info.dataset}: pre-training samples without report text")


def write(frame: pl.DataFrame, info: ManifestInfo, path: str | Path) -> None:
    """Write the manifest with its info in the schema metadata."""
    table = frame.to_arrow()
    metadata = {
        b"adaptor": json.dumps(
            {
                "dataset": info.dataset,
                "task": info.task,
                "classes": list(info.classes),
                "census": dict(info.census),
            }
        ).encode()
    }
    pq.write_table(table.replace_schema_metadata(metadata), path)


def read(path: str | Path) -> tuple[pl.DataFrame, ManifestInfo]:
    """Read a manifest and its info."""
    table = pq.ParquetFile(path).read()  # read_table would first import pyarrow.dataset (0.5 s)
    raw = (table.schema.metadata or {}).get(b"adaptor")
    if raw is None:
        raise ManifestError(f"{path}: not a manifest (no 'adaptor' schema metadata)")
    meta = json.loads(raw)
    info = ManifestInfo(meta["dataset"], meta["task"], tuple(meta["classes"]), meta.get("census", {}))
    return pl.from_arrow(table), info  # type: ignore[return-value]


def split_by_group(groups: list[str], fractions: tuple[float, float, float], seed: int) -> dict[str, str]:
    """Assign whole groups (patients) to train / val / test in the given proportions, deterministically."""
    unique = sorted(set(groups))
    order = np.random.default_rng(seed).permutation(len(unique))
    n_train = round(fractions[0] * len(unique))
    n_val = round(fractions[1] * len(unique))
    names = {}
    for rank, index in enumerate(order):
        names[unique[index]] = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
    return names
