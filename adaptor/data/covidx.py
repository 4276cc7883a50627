"""COVIDx: COVID-Net label files ``patient_id filename class source``; the version is a setting."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adaptor.data.manifest import ManifestInfo, Rejects

CLASSES = ("normal", "pneumonia", "COVID-19")


def read(root: Path, settings: dict, rejects: Rejects) -> tuple[list[dict[str, object]], ManifestInfo]:
    version = settings.get("version", "9A")
    records: list[dict[str, object]] = []
    for split in ("train", "test"):
        label_file = root / f"{split}_COVIDx{version}.txt"
        if not label_file.exists():
            raise FileNotFoundError(
                f"{label_file}: COVIDx label file is missing (dataset version {version!r})"
            )
        for row_number, line in enumerate(label_file.read_text().splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 3 or fields[2] not in CLASSES:
                rejects.add(label_file, row_number, None, f"malformed line: {line[:80]!r}")
                continue
            patient, filename, label = fields[:3]
            records.append(
                {
                    "id": f"{split}/{filename}",
                    "patient": patient,
                    "path": str(root / split / filename),
                    "labels": [float(CLASSES.index(label))],
                    "split": split,
                    "rows": [row_number],
                }
            )
    # The official train list is split 80 / 20 into train / validation with seed 0 (the common convention).
    train = [r for r in records if r["split"] == "train"]
    held_out = np.random.default_rng(0).permutation(len(train))[: round(0.2 * len(train))]
    for index in held_out:
        train[index]["split"] = "val"
    return records, ManifestInfo("covidx", "multiclass", CLASSES)
