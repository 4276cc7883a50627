"""RSNA Pneumonia: one CSV row per box; an image is positive when any of its rows has Target 1."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from adaptor.data.manifest import ManifestInfo, Rejects, split_by_group
from adaptor.data.releases import CLASSES, label_files, settings_for
from adaptor.errors import ManifestError

COLUMNS = ("patientId", "x", "y", "width", "height", "Target")


def read(
    root: Path, settings: dict[str, Any], rejects: Rejects, workers: int = 1
) -> tuple[list[dict[str, object]], ManifestInfo]:
    chosen = settings_for("rsna", settings)
    source = label_files("rsna", root, settings)["labels"]
    targets: dict[str, int] = {}
    boxes: dict[str, list[list[float]]] = {}
    rows: dict[str, list[int]] = {}
    line_count = 0
    with open(source, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        absent = [name for name in COLUMNS if name not in (reader.fieldnames or [])]
        if absent:
            raise ManifestError(f"{source}: no column(s) {absent}; its columns are {reader.fieldnames}")
        for row_number, row in enumerate(reader, start=2):
            line_count += 1
            patient = (row["patientId"] or "").strip()
            target = (row["Target"] or "").strip()
            if not patient or target not in ("0", "1"):
                rejects.add(source, row_number, patient or None, f"malformed row: Target={target!r}")
                continue
            try:
                box = [float(row[k]) for k in ("x", "y", "width", "height")] if target == "1" else None
            except (TypeError, ValueError):
                rejects.add(source, row_number, patient, "positive row without a numeric box")
                continue
            targets[patient] = max(targets.get(patient, 0), int(target))
            boxes.setdefault(patient, [])
            rows.setdefault(patient, []).append(row_number)
            if box:
                boxes[patient].append(box)
    split = split_by_group(list(targets), tuple(chosen["split"]), seed=0)
    images = root / str(chosen["images"])
    records: list[dict[str, object]] = [
        {
            "id": patient,
            "patient": patient,
            "path": str(images / f"{patient}.dcm"),
            "labels": [float(target)],
            "split": split[patient],
            "boxes": boxes[patient],
            "rows": rows[patient],
        }
        for patient, target in targets.items()
    ]
    census = {"label rows": line_count, "patients": len(targets), "positive patients": sum(targets.values())}
    return records, ManifestInfo("rsna", "binary", CLASSES["rsna"], census)
