"""MIMIC-CXR-JPG: frontal images paired with their cleaned report (impression + findings)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from adaptor.data.manifest import ManifestInfo, Rejects
from adaptor.data.reports import clean_report, extract_sections

FRONTAL = ("PA", "AP")
SPLITS = {"train": "train", "validate": "val", "test": "val"}  # the paper merges validate + test


def read(root: Path, settings: dict, rejects: Rejects) -> tuple[list[dict[str, object]], ManifestInfo]:
    metadata = pl.read_csv(root / "mimic-cxr-2.0.0-metadata.csv.gz", infer_schema=False)
    splits = pl.read_csv(root / "mimic-cxr-2.0.0-split.csv.gz", infer_schema=False)
    frontal = metadata.filter(pl.col("ViewPosition").is_in(FRONTAL)).join(
        splits.select("dicom_id", "split"), on="dicom_id", how="left"
    )
    records = []
    for row in frontal.iter_rows(named=True):
        subject, study = row["subject_id"], row["study_id"]
        study_dir = root / "files" / f"p{subject[:2]}" / f"p{subject}"
        report_path = study_dir / f"s{study}.txt"
        if row["split"] not in SPLITS:
            rejects.add(
                "mimic-cxr-2.0.0-split.csv.gz", None, row["dicom_id"], f"no known split ({row['split']})"
            )
            continue
        if not report_path.exists():
            rejects.add(report_path, None, row["dicom_id"], "report file is missing")
            continue
        try:
            report = report_path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as error:
            rejects.add(
                report_path,
                None,
                row["dicom_id"],
                f"report is not valid UTF-8 ({error.reason} at byte {error.start})",
            )
            continue
        sections = extract_sections(report)
        raw = f"{sections.get('IMPRESSION', '')} {sections.get('FINDINGS', '')}"
        text = clean_report(raw)
        if text is None:
            rejects.add(
                report_path,
                None,
                row["dicom_id"],
                "report has fewer than 3 tokens after cleaning",
                "filtered",
            )
            continue
        records.append(
            {
                "id": row["dicom_id"],
                "patient": subject,
                "path": str(study_dir / f"s{study}" / f"{row['dicom_id']}.jpg"),
                "text": text,
                "split": SPLITS[row["split"]],
            }
        )
    return records, ManifestInfo("mimic", "pretrain", ())
