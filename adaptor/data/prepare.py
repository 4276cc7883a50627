"""Turn one dataset folder into a manifest and a rejects table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from adaptor.data import chexpert, covidx, mimic, rsna, siim
from adaptor.data.manifest import ManifestError, ManifestInfo, Rejects, build

Reader = Callable[[Path, dict, Rejects], tuple[list[dict[str, object]], ManifestInfo]]
READERS: dict[str, Reader] = {
    "mimic": mimic.read,
    "rsna": rsna.read,
    "covidx": covidx.read,
    "chexpert": chexpert.read,
    "siim": siim.read,
}


def prepare(
    name: str, reader: str, root: str | Path, settings: dict, on_error: str = "fail"
) -> tuple[pl.DataFrame, ManifestInfo, pl.DataFrame]:
    """Read a dataset; with ``on_error='fail'`` the first rejected sample raises, naming its file and row."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset {name!r}: root folder {root} does not exist")
    rejects = Rejects(name)
    records, info = READERS[reader](root, settings, rejects)
    kept = []
    for record in records:
        if Path(str(record["path"])).exists():
            kept.append(record)
        else:
            rejects.add(record["path"], None, str(record["id"]), "image file is missing")
    errors = rejects.errors()
    if errors and on_error == "fail":
        first = errors[0]
        raise ManifestError(
            f"dataset {name!r}: {len(errors)} bad sample(s); first: {first['source']}"
            f" row {first['row']} (id {first['sample_id']}): {first['reason']}."
            " Fix the input or set on_error: skip to record them in the rejects table."
        )
    info = ManifestInfo(name, info.task, info.classes)
    return build(kept, info), info, rejects.frame()
