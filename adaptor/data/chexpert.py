"""CheXpert: multi-label CSVs with 1 / 0 / -1 (uncertain) / blank; official valid is the test set."""

from __future__ import annotations

import csv
from pathlib import Path

from adaptor.data.manifest import ManifestInfo, Rejects, split_by_group

COMPETITION = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")


def _value(raw: str, uncertain: str) -> float | None:
    raw = raw.strip()
    if raw in ("", "0", "0.0"):
        return 0.0
    if raw in ("1", "1.0"):
        return 1.0
    if raw in ("-1", "-1.0"):
        return 1.0 if uncertain == "ones" else 0.0
    return None


def read(root: Path, settings: dict, rejects: Rejects) -> tuple[list[dict[str, object]], ManifestInfo]:
    classes = tuple(settings.get("classes", COMPETITION))
    uncertain = settings.get("uncertain", "zeros")
    base = root / "CheXpert-v1.0-small"
    records: list[dict[str, object]] = []
    for source, split in (("train.csv", "train"), ("valid.csv", "test")):
        with open(base / source, newline="") as handle:
            for row_number, row in enumerate(csv.DictReader(handle), start=2):
                if row.get("Frontal/Lateral") != "Frontal":
                    continue
                values = [_value(row.get(name) or "", uncertain) for name in classes]
                if any(v is None for v in values) or not row.get("Path"):
                    rejects.add(base / source, row_number, row.get("Path"), "malformed label value or path")
                    continue
                path = row["Path"]
                records.append(
                    {
                        "id": path,
                        "patient": path.split("/")[2],
                        "path": str(root / path),
                        "labels": values,
                        "split": split,
                    }
                )
    # Validation is carved from train by patient, so no patient is in both (MGCA's code leaks here).
    train = [r for r in records if r["split"] == "train"]
    val_share = float(settings.get("val_fraction", 0.15))
    assignment = split_by_group([str(r["patient"]) for r in train], (1 - val_share, val_share, 0.0), seed=0)
    for record in train:
        record["split"] = assignment[str(record["patient"])]
    return records, ManifestInfo("chexpert", "multilabel", classes)
