"""COVIDx: COVID-Net label lists ``patient_id filename class source``; the version is a setting.

The official train list is split into train / validation by patient, stratified by class (one
fold of scikit-learn's ``StratifiedGroupKFold``), so that no patient's images sit on both sides;
the official test list is the test split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from adaptor.data.manifest import ManifestInfo, Rejects
from adaptor.data.releases import CLASSES as READER_CLASSES
from adaptor.data.releases import label_files, settings_for
from adaptor.errors import SettingsError

CLASSES = READER_CLASSES["covidx"]
BINARY_CLASSES = ("positive", "negative")  # COVIDx 8B, 9B, CXR-4: COVID-19 or not


def parse_line(line: str) -> tuple[str, str, str] | None:
    """(patient, filename, class) of a label line, or None when it is not one.

    The class is the last field, or the one before the data source; a filename may hold spaces.
    """
    fields = line.split()
    for label_at in (-2, -1):
        if len(fields) >= 2 - label_at and fields[label_at] in (*CLASSES, *BINARY_CLASSES):
            return fields[0], " ".join(fields[1:label_at]), fields[label_at]
    return None


def official_list(sample_id: str) -> str:
    """The official list (train or test) a sample id comes from: ids are ``<list>/<filename>``."""
    return sample_id.split("/", 1)[0]


def validation_rows(patients: list[str], labels: list[float], val_fraction: float) -> np.ndarray:
    """Rows of the official train list that become validation: whole patients, class-stratified."""
    from sklearn.model_selection import StratifiedGroupKFold

    folds = StratifiedGroupKFold(n_splits=round(1 / val_fraction), shuffle=True, random_state=0)
    _, held_out = next(folds.split(np.zeros(len(patients)), labels, groups=patients))
    return np.asarray(held_out)


def read(
    root: Path, settings: dict[str, Any], rejects: Rejects, workers: int = 1
) -> tuple[list[dict[str, object]], ManifestInfo]:
    chosen = settings_for("covidx", settings)
    lists = label_files("covidx", root, settings)
    records: list[dict[str, Any]] = []
    seen: dict[str, tuple[Path, int]] = {}
    census: dict[str, int] = {}
    binary = 0
    for split in ("train", "test"):
        label_file = lists[f"{split}_list"]  # present: prepare checks the label files first
        images = root / str(chosen[f"{split}_images"])
        lines = label_file.read_text().splitlines()
        census[f"{split} rows"] = sum(1 for line in lines if line.strip())
        for row_number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            parsed = parse_line(line)
            if parsed is None:
                rejects.add(label_file, row_number, None, f"malformed line: {line[:80]!r}")
                continue
            patient, filename, label = parsed
            if label in BINARY_CLASSES:
                binary += 1
                continue
            sample_id = f"{split}/{filename}"
            if sample_id in seen:
                first_file, first_row = seen[sample_id]
                rejects.add(label_file, row_number, sample_id, f"repeats {first_file.name} row {first_row}")
                continue
            seen[sample_id] = (label_file, row_number)
            records.append(
                {
                    "id": sample_id,
                    "patient": patient,
                    "path": str(images / filename),
                    "labels": [float(CLASSES.index(label))],
                    "split": split,
                    "rows": [row_number],
                }
            )
    if binary:
        raise SettingsError(
            f"COVIDx {chosen['version']}: {binary} lines are labelled positive / negative (a binary"
            f" release); the three-class task ({', '.join(CLASSES)}) needs a three-class release such as 9A"
        )
    train = [record for record in records if record["split"] == "train"]
    held_out = validation_rows(
        [str(r["patient"]) for r in train], [r["labels"][0] for r in train], float(chosen["val_fraction"])
    )
    for index in held_out:
        train[index]["split"] = "val"
    census["patients"] = len({str(r["patient"]) for r in records})
    return records, ManifestInfo("covidx", "multiclass", CLASSES, census)
