"""Turn one dataset folder into a manifest and a rejects table."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import polars as pl

from adaptor.data import chexpert, covidx, mimic, rsna, siim
from adaptor.data.manifest import ManifestInfo, Rejects, build
from adaptor.data.releases import missing_label_files
from adaptor.errors import ManifestError

log = logging.getLogger(__name__)
Reader = Callable[[Path, dict[str, Any], Rejects, int], tuple[list[dict[str, object]], ManifestInfo]]
MISSING_IMAGE = "image file is missing"
OUTSIDE_ROOT = "image path leaves the dataset root ('..' or an absolute path in the label file)"
READERS: dict[str, Reader] = {
    "mimic": mimic.read,
    "rsna": rsna.read,
    "covidx": covidx.read,
    "chexpert": chexpert.read,
    "siim": siim.read,
}


def existing(paths: list[str], workers: int = 8) -> list[bool]:
    """Which files exist, checked on threads (a stat waits on the disk, not on Python)."""
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(os.path.exists, paths, chunksize=1024))


def inside(root: Path, path: str) -> bool:
    """Whether ``path`` names a file under ``root`` once '..' is resolved (lexically: a dataset may be
    a tree of symbolic links into other storage)."""
    base = os.path.normpath(os.path.abspath(root))
    return os.path.commonpath([base, os.path.normpath(os.path.abspath(path))]) == base


def read_dataset(
    name: str, reader: str, root: str | Path, settings: dict[str, Any], workers: int = 1
) -> tuple[list[dict[str, object]], ManifestInfo, Rejects]:
    """Every sample the reader finds, with each left-out one in the rejects, whatever ``on_error`` says."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset {name!r}: root folder {root} does not exist")
    missing = missing_label_files(reader, root, settings)
    if missing:
        raise FileNotFoundError(f"dataset {name!r}: missing {', '.join(missing)}")
    rejects = Rejects(name)
    records, info = READERS[reader](root, settings, rejects, workers)
    kept = []
    for record, exists in zip(records, existing([str(r["path"]) for r in records]), strict=True):
        problem = None if inside(root, str(record["path"])) else OUTSIDE_ROOT
        problem = problem or (None if exists else MISSING_IMAGE)
        if problem is None:
            kept.append(record)
        else:
            rows = record.get("rows")  # the label-file lines naming it, which MGCA's splits count
            rejects.add(record["path"], None, str(record["id"]), problem, rows=rows)  # type: ignore[arg-type]
    return kept, ManifestInfo(name, info.task, info.classes, info.census), rejects


def prepare(
    name: str,
    reader: str,
    root: str | Path,
    settings: dict[str, Any],
    on_error: str = "fail",
    workers: int = 1,
) -> tuple[pl.DataFrame, ManifestInfo, pl.DataFrame]:
    """Read a dataset; with ``on_error='fail'`` the first rejected sample raises, naming its file and row."""
    records, info, rejects = read_dataset(name, reader, root, settings, workers)
    errors = rejects.errors()
    if errors and on_error == "fail":
        first = errors[0]
        where = f"{first['source']}" + (f" row {first['row']}" if first["row"] is not None else "")
        raise ManifestError(
            f"dataset {name!r}: {len(errors)} bad sample(s); first: {where}"
            f" (id {first['sample_id']}): {first['reason']}."
            " Fix the input or set on_error: skip to record them in the rejects table."
        )
    return build(records, info), info, rejects.frame()


def log_summary(
    name: str, frame: pl.DataFrame, info: ManifestInfo, rejects: pl.DataFrame, rejects_path: str | Path
) -> None:
    """What ``prepare`` found and kept: the reader's counts, each reject reason, the split sizes."""
    log.info("%s: found %s", name, dict(info.census))
    for kind, reason, count in rejects.group_by("kind", "reason").len().sort(pl.all()).iter_rows():
        log.info("%s: %d rejected (%s): %s", name, count, kind, reason)
    counts = frame.group_by("split").len().sort("split").rows()
    log.info(
        "%s: %d samples %s, %d rejected (listed in %s)", name, len(frame), counts, len(rejects), rejects_path
    )
