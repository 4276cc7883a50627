"""RSNA Pneumonia: one CSV row per box; an image is positive when any of its rows has Target 1."""

from __future__ import annotations

import csv
from pathlib import Path

from adaptor.data.manifest import ManifestInfo, Rejects, split_by_group

LABELS = "stage_2_train_labels.csv"


def read(root: Path, settings: dict, rejects: Rejects) -> tuple[list[dict[str, object]], ManifestInfo]:
    targets: dict[str, int] = {}
    boxes: dict[str, list[list[float]]] = {}
    rows: dict[str, list[int]] = {}
    with open(root / LABELS, newline="") as handle:
        for row_number, row in enumerate(csv.DictReader(handle), start=2):
            patient = (row.get("patientId") or "").strip()
            target = (row.get("Target") or "").strip()
            if not patient or target not in ("0", "1"):
                rejects.add(root / LABELS, row_number, patient or None, f"malformed row: Target={target!r}")
                continue
            try:
                box = [float(row[k]) for k in ("x", "y", "width", "height")] if target == "1" else None
            except (TypeError, ValueError):
                rejects.add(root / LABELS, row_number, patient, "positive row without a numeric box")
                continue
            targets[patient] = max(targets.get(patient, 0), int(target))
            boxes.setdefault(patient, [])
            rows.setdefault(patient, []).append(row_number)
            if box:
                boxes[patient].append(box)
    split = split_by_group(list(targets), tuple(settings.get("split", (0.7, 0.15, 0.15))), seed=0)
    records = [
        {
            "id": patient,
            "patient": patient,
            "path": str(root / "stage_2_train_images" / f"{patient}.dcm"),
            "labels": [float(target)],
            "split": split[patient],
            "boxes": boxes[patient],
            "rows": rows[patient],
        }
        for patient, target in targets.items()
    ]
    return records, ManifestInfo("rsna", "binary", ("Pneumonia",))
