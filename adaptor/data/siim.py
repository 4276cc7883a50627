"""SIIM-ACR pneumothorax: ``train-rle.csv`` (with its leading-space quirks) and DICOMs in nested folders."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from adaptor.data.manifest import ManifestInfo, Rejects, split_by_group
from adaptor.data.releases import CLASSES, label_files, settings_for
from adaptor.errors import ManifestError


def rle_decode(rle: str, height: int, width: int) -> np.ndarray:
    """Decode SIIM run-length pairs (relative starts, column-major) into a boolean mask."""
    values = [int(v) for v in rle.split()]
    flat = np.zeros(height * width, dtype=bool)
    position = 0
    for start, length in zip(values[::2], values[1::2], strict=True):
        position += start
        flat[position : position + length] = True
        position += length
    return flat.reshape(width, height).T


def read(
    root: Path, settings: dict[str, Any], rejects: Rejects, workers: int = 1
) -> tuple[list[dict[str, object]], ManifestInfo]:
    chosen = settings_for("siim", settings)
    images = {path.stem: path for path in (root / str(chosen["images"])).rglob("*.dcm")}
    masks: dict[str, list[str]] = {}
    rows: dict[str, list[int]] = {}
    source = label_files("siim", root, settings)["labels"]
    line_count = 0
    with open(source, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        if header != ["ImageId", "EncodedPixels"]:
            raise ManifestError(f"{source}: header {header}, expected ImageId, EncodedPixels")
        for row_number, row in enumerate(reader, start=2):
            if not row:  # a blank line, which pandas skips too
                continue
            line_count += 1
            image_id, rle = (row[0].strip(), row[1].strip()) if len(row) == 2 else ("", "")
            if not image_id or not (rle == "-1" or rle.replace(" ", "").isdigit()):
                rejects.add(source, row_number, image_id or None, "malformed row")
                continue
            masks.setdefault(image_id, [])
            rows.setdefault(image_id, []).append(row_number)
            if rle != "-1":
                masks[image_id].append(rle)
    records: list[dict[str, object]] = []
    split = split_by_group(list(masks), tuple(chosen["split"]), seed=0)
    for image_id, rles in masks.items():
        if image_id not in images:
            rejects.add(
                source, rows[image_id][0], image_id, "no DICOM file for this ImageId", rows=rows[image_id]
            )
            continue
        if rles and len(rles) != len(rows[image_id]):
            reason = "both -1 and mask rows for this ImageId"
            rejects.add(source, rows[image_id][0], image_id, reason, rows=rows[image_id])
            continue
        records.append(  # a positive image's mask[i] is the mask of its label-file line rows[i]
            {
                "id": image_id,
                "patient": image_id,
                "path": str(images[image_id]),
                "labels": [float(bool(rles))],
                "split": split[image_id],
                "mask": rles,
                "rows": rows[image_id],
            }
        )
    census = {
        "label rows": line_count,
        "images in the label file": len(masks),
        "positive images": sum(bool(rles) for rles in masks.values()),
        "DICOM files": len(images),
    }
    return records, ManifestInfo("siim", "segmentation", CLASSES["siim"], census)
