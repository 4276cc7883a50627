"""Train / validation / test as MGCA's code splits each dataset, for ``protocol: mgca`` and ``mgca_clean``.

MGCA (Wang et al., 2022), whose splits most later papers reuse, shuffles with scikit-learn's
``train_test_split(random_state=0)`` and writes each split to CSV in that shuffled order; its label
fractions then pick *positions* in that order. A split here is therefore an ordered id list, and the
mgca fraction draws (``fractions.draw_mgca*``) index into it. Reproduced for the datasets the Adaptor
paper evaluates on (RSNA, COVIDx, SIIM). CheXpert only for zero-shot, which reads the test split
alone: MGCA's test is the official validation set, as ours; its train / validation split is not
reproduced (its validation rows leak back into train: picked by position, dropped by index label).

SIIM is split by ``train-rle.csv`` rows, so an image with several masks can have rows in two splits.
``mgca`` keeps MGCA's membership exactly: such an image is in every split its rows reached, and
each split sees only its own rows of the mask (``SplitRows``), as MGCA's loaders build masks from
the split's CSV. ``mgca_clean`` moves it whole to the latest split its rows reached, so that no
tested mask is trained on.

MGCA splits every unit of the label file (row, or patient for RSNA). A sample ``prepare`` rejected
(its image is missing, say) still holds its place in that shuffle (``absent``) and leaves after it,
so one missing file does not move every other sample to another split.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import polars as pl

from adaptor.data.covidx import official_list

log = logging.getLogger(__name__)
Item = TypeVar("Item")

SPLITS = ("train", "val", "test")
# MGCA's ``test_fac * 2``: 15 % validation + 15 % test, as the float it passes.
HELD_OUT = 0.15 * 2
# MGCA's RSNA segmentation (detection) split holds out 2 x 5,337 of the 26,684 patients, leaving
# 16,010 for training; on another number of patients (the demo) the same share.
RSNA_SEGMENTATION_HELD_OUT = (2 * 5337, 26684)
# MGCA balances negatives to positives in train only in its SIIM loader.
BALANCED = frozenset({"siim"})

MGCA_PROTOCOLS = ("mgca", "mgca_clean")

Splits = dict[str, list[str]]
# split -> id -> the label-file rows of that sample the split holds, where it does not hold them all
SplitRows = dict[str, dict[str, list[int]]]
UNIT_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {"id": pl.String, "rows": pl.List(pl.Int64)}


def absent_units(manifest: pl.DataFrame, prepare_rejects: pl.DataFrame) -> pl.DataFrame:
    """Samples the label files name that ``prepare`` left out (id, rows), which MGCA's code counts."""
    if "rows" not in prepare_rejects.columns:
        raise ValueError("a prepare rejects table without label-file rows; rerun: snakemake -R prepare")
    named = prepare_rejects.filter(
        pl.col("sample_id").is_not_null()
        & pl.col("rows").is_not_null()
        & ~pl.col("sample_id").is_in(manifest["id"].to_list())
    )
    return (
        named.select(pl.col("sample_id").alias("id"), "rows")
        .explode("rows")
        .group_by("id", maintain_order=True)
        .agg(pl.col("rows").unique(maintain_order=True))
    ).cast(UNIT_SCHEMA)  # type: ignore[arg-type]


def _units(manifest: pl.DataFrame, absent: pl.DataFrame) -> pl.DataFrame:
    """Every sample MGCA's code sees (id, rows): the manifest's and the absent ones."""
    if "rows" not in manifest.columns or manifest["rows"].is_null().any():
        raise ValueError("protocol mgca needs the manifest's label-file rows; rerun: snakemake -R prepare")
    columns = list(UNIT_SCHEMA)
    return pl.concat([manifest.select(columns).cast(UNIT_SCHEMA), absent.select(columns).cast(UNIT_SCHEMA)])  # type: ignore[arg-type]


def _ordered(units: pl.DataFrame) -> list[str]:
    """Ids in the order of their first label-file line (the order MGCA's pandas frames have)."""
    return units.sort(pl.col("rows").list.first(), maintain_order=True)["id"].to_list()


def _three_way(items: list[Item], held_out: float | int) -> dict[str, list[Item]]:
    """MGCA's split: ``held_out`` of the rows leave train, then that remainder is halved (test first)."""
    from sklearn.model_selection import train_test_split

    train, rest = train_test_split(np.arange(len(items)), test_size=held_out, random_state=0)
    test, val = train_test_split(rest, test_size=0.5, random_state=0)
    return {name: [items[i] for i in rows] for name, rows in (("train", train), ("val", val), ("test", test))}


def _rsna(units: pl.DataFrame, task: str, protocol: str) -> tuple[Splits, SplitRows]:
    """Patients sorted by id (pandas ``groupby``); 70 / 15 / 15 for classification, MGCA's detection
    split (16,010 / 5,337 / 5,337 on the full set) for segmentation."""
    ids = sorted(units["id"].to_list())
    if task != "segmentation":
        return _three_way(ids, HELD_OUT), {}
    held, total = RSNA_SEGMENTATION_HELD_OUT
    return _three_way(ids, round(len(ids) * held / total)), {}


def _covidx(units: pl.DataFrame, task: str, protocol: str) -> tuple[Splits, SplitRows]:
    """The official train list in file order, 80 / 20 into train / validation; the official test."""
    from sklearn.model_selection import train_test_split

    lists = units.with_columns(pl.col("id").map_elements(official_list, return_dtype=pl.String).alias("list"))
    official_train = _ordered(lists.filter(pl.col("list") == "train"))
    train, val = train_test_split(np.arange(len(official_train)), train_size=0.8, random_state=0)
    splits = {
        "train": [official_train[i] for i in train],
        "val": [official_train[i] for i in val],
        "test": _ordered(lists.filter(pl.col("list") == "test")),
    }
    return splits, {}


def _siim(units: pl.DataFrame, task: str, protocol: str) -> tuple[Splits, SplitRows]:
    """MGCA's row split. ``mgca``: each split holds the images its rows name, in the order of their
    first row there, with only those rows of their masks. ``mgca_clean``: an image whose rows
    straddle splits goes whole to the latest of train < val < test they reached, at its first row's
    position there. The number of straddling images is logged."""
    lines = units.explode("rows").sort("rows").rows()
    by_rows = _three_way(lines, HELD_OUT)
    all_rows = dict(units.iter_rows())
    reached: dict[str, list[str]] = {}
    for name in SPLITS:
        for image in dict.fromkeys(image for image, _ in by_rows[name]):
            reached.setdefault(image, []).append(name)
    straddling = sum(len(names) > 1 for names in reached.values())
    log.info("siim: %d images have rows in more than one of MGCA's splits (%s)", straddling, protocol)
    splits: Splits
    if protocol == "mgca_clean":
        splits = {
            name: list(dict.fromkeys(i for i, _ in by_rows[name] if reached[i][-1] == name))
            for name in SPLITS
        }
        return splits, {}
    splits = {}
    partial: SplitRows = {}
    for name in SPLITS:
        held: dict[str, list[int]] = {}
        for image, row in by_rows[name]:
            held.setdefault(image, []).append(row)
        splits[name] = list(held)
        partial[name] = {i: sorted(rows) for i, rows in held.items() if len(rows) < len(all_rows[i])}
    return splits, partial


def own_splits(manifest: pl.DataFrame) -> Splits:
    """The manifest's own split (readers' patient-grouped draw), in manifest order."""
    return {name: manifest.filter(pl.col("split") == name)["id"].to_list() for name in SPLITS}


CONVENTIONS: dict[str, Callable[[pl.DataFrame, str, str], tuple[Splits, SplitRows]]] = {
    "rsna": _rsna,
    "covidx": _covidx,
    "siim": _siim,
}


def mgca_splits(
    manifest: pl.DataFrame,
    reader: str,
    task: str,
    protocol: str = "mgca",
    absent: pl.DataFrame | None = None,
) -> tuple[Splits, SplitRows]:
    """MGCA's train / val / test ids for a dataset read by ``reader``, each in MGCA's order, and the
    samples a split holds only some label-file rows of (SIIM under ``mgca``). ``absent`` samples
    (:func:`absent_units`) take their places in the shuffle; the caller leaves them out after its
    draws, whose positions they hold."""
    if protocol not in MGCA_PROTOCOLS:
        raise ValueError(f"{protocol!r} is not one of MGCA's protocols {MGCA_PROTOCOLS}")
    if reader == "chexpert":  # zero-shot only: the official validation set, MGCA's test and the reader's
        if task != "zeroshot":
            raise ValueError(
                f"protocol {protocol}: MGCA's CheXpert train / validation split is not reproduced (it"
                " leaks validation rows into train); evaluate CheXpert classification under protocol strict"
            )
        return {"train": [], "val": [], "test": own_splits(manifest)["test"]}, {}
    if reader not in CONVENTIONS:
        raise ValueError(
            f"protocol {protocol}: MGCA's split is reproduced for {sorted(CONVENTIONS)} (and CheXpert's"
            f" test split for zero-shot), not for {reader!r}; evaluate this dataset under protocol strict"
        )
    absent = absent if absent is not None else pl.DataFrame(schema=UNIT_SCHEMA)
    if len(absent):
        log.info("%d samples prepare rejected hold their places in MGCA's split", len(absent))
    return CONVENTIONS[reader](_units(manifest, absent), task, protocol)
