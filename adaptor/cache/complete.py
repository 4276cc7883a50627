"""The last step of embedding: check a filled cache is whole, mark it complete, list its rejects.

Torch-free, so the ``embed_finalize`` job starts in a fraction of a second.
"""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from adaptor.cache import store
from adaptor.data.manifest import Rejects

log = logging.getLogger(__name__)


def finalize_cache(path: str | Path, manifest: pl.DataFrame, dataset: str, modality: str) -> pl.DataFrame:
    """Check the cache is whole, mark it complete, and return its rejected samples as a rejects table."""
    rejected = store.finalize(path)
    rejects = Rejects(dataset)
    rows = manifest.with_row_index("row").filter(pl.col("id").is_in(list(rejected)))
    for row in rows.iter_rows(named=True):
        source = row["path"] if modality == "image" else f"{dataset} report of {row['id']}"
        rejects.add(source, row["row"], row["id"], rejected[row["id"]])
    if rejected:
        log.warning("%s: %d samples rejected at embedding, left out of later stages", path, len(rejected))
    return rejects.frame()
