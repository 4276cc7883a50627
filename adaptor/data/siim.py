"""SIIM-ACR pneumothorax: ``train-rle.csv`` (with its leading-space quirks) and DICOMs in nested folders."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from adaptor.data.manifest import ManifestInfo, Rejects, split_by_group


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


def read(root: Path, settings: dict, rejects: Rejects) -> tuple[list[dict[str, object]], ManifestInfo]:
    images = {path.stem: path for path in (root / "dicom-images-train").rglob("*.dcm")}
    masks: dict[str, list[str]] = {}
    rows: dict[str, list[int]] = {}
    source = root / "train-rle.csv"
    with open(source, newline="") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader)]
        if header != ["ImageId", "EncodedPixels"]:
            raise ValueError(f"{source}: unexpected header {header}")
        for row_number, row in enumerate(reader, start=2):
            image_id, rle = (row[0].strip(), row[1].strip()) if len(row) == 2 else ("", "")
            if not image_id or not (rle == "-1" or rle.replace(" ", "").isdigit()):
                rejects.add(source, row_number, image_id or None, "malformed row")
                continue
            masks.setdefault(image_id, [])
            rows.setdefault(image_id, []).append(row_number)
            if rle != "-1":
                masks[image_id].append(rle)
    records: list[dict[str, object]] = []
    split = split_by_group(list(masks), tuple(settings.get("split", (0.7, 0.15, 0.15))), seed=0)
    for image_id, rles in masks.items():
        if image_id not in images:
            rejects.add(source, None, image_id, "no DICOM file for this ImageId")
            continue
        records.append(
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
    return records, ManifestInfo("siim", "segmentation", ("Pneumothorax",))
