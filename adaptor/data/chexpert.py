"""CheXpert: multi-label CSVs with 1 / 0 / -1 (uncertain) / blank; official valid is the test set.

Blank means the labeller found no mention: negative, the common convention. Uncertain (-1) follows
the ``uncertain`` setting: ``zeros``, ``ones``, ``ignore`` (NaN: left out of the head's loss and of
the metrics for that class), a mapping {class: policy}, or ``chexpert_paper`` (U-Ones for
Atelectasis and Edema, U-Zeros for the others: the CheXpert paper's per-class choice where U-Ones
or U-Zeros was best, as commonly used).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adaptor.data.manifest import ManifestInfo, Rejects, split_by_group
from adaptor.data.releases import label_files, settings_for
from adaptor.errors import ManifestError, SettingsError

POLICIES = {"zeros": 0.0, "ones": 1.0, "ignore": math.nan}
NAMED_POLICIES = {"chexpert_paper": {"Atelectasis": "ones", "Edema": "ones"}}
REQUIRED_COLUMNS = ("Path", "Frontal/Lateral")


def uncertain_values(uncertain: str | Mapping[str, str], classes: tuple[str, ...]) -> list[float]:
    """The value an uncertain (-1) label takes, per class, under the ``uncertain`` setting."""
    if isinstance(uncertain, str) and uncertain in POLICIES:
        return [POLICIES[uncertain]] * len(classes)
    if isinstance(uncertain, str):
        if uncertain not in NAMED_POLICIES:
            raise SettingsError(
                f"uncertain: {uncertain!r} is none of {[*POLICIES, *NAMED_POLICIES]} and not a mapping"
            )
        named = NAMED_POLICIES[uncertain]
        return [POLICIES[named.get(name, "zeros")] for name in classes]
    unknown = sorted(set(uncertain) - set(classes))
    missing = [name for name in classes if name not in uncertain]
    bad = {name: policy for name, policy in uncertain.items() if policy not in POLICIES}
    if unknown or missing or bad:
        raise SettingsError(
            f"uncertain: a mapping needs one of {list(POLICIES)} for each class in classes;"
            f" not classes: {unknown}, without a policy: {missing}, unknown policies: {bad}"
        )
    return [POLICIES[uncertain[name]] for name in classes]


def _value(raw: str, uncertain: float) -> float | None:
    raw = raw.strip()
    if raw in ("", "0", "0.0"):
        return 0.0
    if raw in ("1", "1.0"):
        return 1.0
    if raw in ("-1", "-1.0"):
        return uncertain
    return None


def _patient(path: str) -> str:
    return next((part for part in path.split("/") if part.startswith("patient")), path)


def read(
    root: Path, settings: dict[str, Any], rejects: Rejects, workers: int = 1
) -> tuple[list[dict[str, object]], ManifestInfo]:
    chosen = settings_for("chexpert", settings)
    classes = tuple(chosen["classes"])
    uncertain = uncertain_values(chosen["uncertain"], classes)
    records: list[dict[str, object]] = []
    census: dict[str, int] = {}
    sources = label_files("chexpert", root, settings).values()
    for source, split in zip(sources, ("train", "test"), strict=True):
        with open(source, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            absent = [name for name in (*REQUIRED_COLUMNS, *classes) if name not in (reader.fieldnames or [])]
            if absent:
                raise ManifestError(
                    f"{source}: no column(s) {absent}; its columns are {reader.fieldnames}."
                    " Check datasets.<name>.classes against the CSV header."
                )
            rows = 0
            for row_number, row in enumerate(reader, start=2):
                rows += 1
                if row["Frontal/Lateral"] != "Frontal":
                    continue
                values = [_value(row[c] or "", value) for c, value in zip(classes, uncertain, strict=True)]
                if any(v is None for v in values) or not row["Path"]:
                    rejects.add(source, row_number, row["Path"], "malformed label value or path")
                    continue
                path = row["Path"]
                records.append(
                    {
                        "id": path,
                        "patient": _patient(path),
                        "path": str(root / path),
                        "labels": values,
                        "split": split,
                        "rows": [row_number],
                    }
                )
            census[f"{source.stem} images"] = rows
    census["frontal images"] = len(records)
    # Validation is carved from train by patient, so no patient is in both (MGCA's code leaks here).
    train = [r for r in records if r["split"] == "train"]
    val_share = float(chosen["val_fraction"])
    assignment = split_by_group([str(r["patient"]) for r in train], (1 - val_share, val_share, 0.0), seed=0)
    for record in train:
        record["split"] = assignment[str(record["patient"])]
    return records, ManifestInfo("chexpert", "multilabel", classes, census)
