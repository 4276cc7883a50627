"""The protocol's view of a dataset for one task: label-fraction subsets of train, the whole val and
test splits, and the samples one evaluation cell uses. NumPy and Polars only, so the per-seed
``subsets`` jobs start without importing torch."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from adaptor.evaluate.fractions import PROTOCOLS, draw, draw_mgca, draw_mgca_segmentation
from adaptor.evaluate.splits import BALANCED, SplitRows, mgca_splits, own_splits

log = logging.getLogger(__name__)

SUBSET_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "id": pl.String,
    "split": pl.String,
    "fraction": pl.Float64,
    "seed": pl.Int64,
    "protocol": pl.String,
    "rows": pl.List(pl.Int64),
}


def labels_array(frame: pl.DataFrame) -> np.ndarray:
    """The manifest's label lists as a float array [n, classes] (NaN: unknown)."""
    return np.asarray(frame["labels"].to_list(), dtype=np.float32)


def _rows(
    protocol: str,
    ids: list[str],
    split: str,
    partial: dict[str, list[int]],
    fraction: float | None = None,
    seed: int | None = None,
) -> pl.DataFrame:
    """Subset rows; ``rows`` lists the label-file lines a sample contributes here when not all of them."""
    columns = {
        "id": ids,
        "split": split,
        "fraction": fraction,
        "seed": seed,
        "protocol": protocol,
        "rows": [partial.get(i) for i in ids],
    }
    return pl.DataFrame(columns, schema=SUBSET_SCHEMA)


def draw_subsets(
    manifest: pl.DataFrame,
    fractions: list[float],
    seeds: list[int],
    protocol: str = "strict",
    task: str = "classification",
    reader: str = "",
    absent: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The protocol's view of a dataset for one task, as (id, split, fraction, seed, protocol, rows)
    rows: each training subset (split ``train``; none for zero-shot), then the whole val and test
    splits (no fraction or seed).

    ``strict`` draws from the manifest's own split. ``mgca`` and ``mgca_clean`` draw on MGCA's
    split by position, so the ``absent`` (label-file samples ``prepare`` rejected,
    :func:`splits.absent_units`) hold their places in the draw and leave afterwards; SIIM's negative
    balancing needs every train image's label, so there absent images leave before the draw.

    No encoder's rejects enter the draw: a sample an image cache rejected leaves each cell that reads
    that cache (:class:`CellData`), so adding an encoder changes no drawn subset, and one seed's
    draw is the same whichever other seeds are drawn.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown label-fraction protocol {protocol!r}; one of {PROTOCOLS}")
    partial: SplitRows = {}
    gone: set[str] = set()
    if protocol == "strict":
        splits = own_splits(manifest)
    else:
        splits, partial = mgca_splits(manifest, reader, task, protocol, absent)
        gone = set(absent["id"].to_list()) if absent is not None else set()
    ids = np.asarray(splits["train"], dtype=object)
    if task == "zeroshot":
        draws = {}
    elif protocol == "strict":
        train = manifest.filter(pl.col("id").is_in(splits["train"]))
        groups = train.select(pl.col("patient").fill_null(pl.col("id")))["patient"].to_numpy()
        draws = {seed: draw(labels_array(train), fractions, seed, groups) for seed in seeds}
    elif task == "classification":
        draws = dict.fromkeys(seeds, draw_mgca(len(ids), fractions))
    else:
        labels = dict(zip(manifest["id"].to_list(), labels_array(manifest), strict=True))
        if reader in BALANCED:
            ids = np.asarray([i for i in ids if i in labels], dtype=object)
        positive = np.asarray([i in labels and labels[i][0] > 0 for i in ids], dtype=bool)
        draws = dict.fromkeys(seeds, draw_mgca_segmentation(positive, fractions, reader in BALANCED))
    rows = []
    for seed, subsets in draws.items():
        for fraction, index in subsets.items():
            chosen = [i for i in ids[index] if i not in gone]
            if not chosen:
                raise ValueError(f"{protocol}: fraction {fraction} of {len(ids)} training samples is empty")
            rows.append(_rows(protocol, chosen, "train", partial.get("train", {}), fraction, seed))
    held_out = [
        _rows(protocol, [i for i in splits[name] if i not in gone], name, partial.get(name, {}))
        for name in ("val", "test")
    ]
    return pl.concat([*rows, *held_out])


def split_ids(subsets: pl.DataFrame, split: str) -> list[str]:
    """The whole val or test split of a subsets table."""
    return subsets.filter((pl.col("split") == split) & pl.col("fraction").is_null())["id"].to_list()


def _members(manifest: pl.DataFrame, part: pl.DataFrame) -> pl.DataFrame:
    """The manifest rows of one split or subset, in manifest order, with ``split_rows``: the
    label-file lines the sample contributes there (null: all of them)."""
    return manifest.join(
        part.select("id", pl.col("rows").alias("split_rows")), on="id", how="inner", maintain_order="left"
    )


@dataclass(frozen=True)
class CellData:
    """The samples one evaluation cell uses: its training subset and the whole val and test splits,
    each restricted to ``manifest`` (the caller leaves out the samples its features' cache rejected).
    """

    protocol: str
    subset_ids: list[str]
    train: pl.DataFrame
    val: pl.DataFrame
    test: pl.DataFrame

    @classmethod
    def select(cls, manifest: pl.DataFrame, subsets: pl.DataFrame, fraction: float, seed: int) -> CellData:
        if "rows" not in subsets.columns:
            raise ValueError("a subsets table from before per-split mask rows; rerun: snakemake -R subsets")
        chosen = subsets.filter((pl.col("fraction") == fraction) & (pl.col("seed") == seed))
        if chosen.is_empty():
            raise ValueError(f"no subset drawn for fraction {fraction}, seed {seed}")
        held_out = subsets.filter(pl.col("fraction").is_null())
        train = _members(manifest, chosen)
        return cls(
            subsets["protocol"][0],
            train["id"].to_list(),
            train,
            _members(manifest, held_out.filter(pl.col("split") == "val")),
            _members(manifest, held_out.filter(pl.col("split") == "test")),
        )


def without_rejects(frame: pl.DataFrame, rejects: str | Path) -> pl.DataFrame:
    """The manifest minus the samples the features' image cache rejected at embedding: every method
    reading that cache sees the same samples (other encoders' caches reject the same unreadable images)."""
    rejected = pl.read_parquet(rejects, columns=["sample_id"])["sample_id"]
    kept = frame.filter(~pl.col("id").is_in(rejected.to_list()))
    if len(kept) < len(frame):
        log.info("left out %d samples rejected at embedding (%s)", len(frame) - len(kept), rejects)
    return kept
