"""MIMIC-CXR-JPG: frontal images paired with their study's report (impression + findings, cleaned).

Reports are read once per study, in parallel worker processes, from the folder
``mimic-cxr-reports.zip`` unpacks to or from the zip itself. A report that cannot be used never
stops the reading: it becomes a rejects row, with its reason, for each of its study's images.
"""

from __future__ import annotations

import logging
import zipfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from itertools import chain
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import polars as pl

from adaptor.data.manifest import ManifestInfo, Rejects
from adaptor.data.releases import label_files, settings_for
from adaptor.data.reports import report_text
from adaptor.progress import progress

log = logging.getLogger(__name__)

FRONTAL = ("PA", "AP")
SPLITS = {"train": "train", "validate": "val", "test": "val"}  # the paper merges validate + test
CHUNK = 2000  # reports per task handed to a worker
_archive: dict[str, tuple[zipfile.ZipFile, dict[str, str]]] = {}


def _open_archive(path: str) -> tuple[zipfile.ZipFile, dict[str, str]]:
    """The zip, and its reports by ``pXX/pSUBJECT/sSTUDY.txt`` whatever folder they are in; once a process."""
    if path not in _archive:
        archive = zipfile.ZipFile(path)
        members = {
            "/".join(name.split("/")[-3:]): name for name in archive.namelist() if name.endswith(".txt")
        }
        _archive[path] = (archive, members)
    return _archive[path]


def _read_bytes(source: Path, relative: str) -> bytes:
    if source.suffix == ".zip":
        archive, members = _open_archive(str(source))
        if relative not in members:
            raise FileNotFoundError(relative)
        return archive.read(members[relative])
    return (source / relative).read_bytes()


def read_reports(source: Path, relative: list[str], fallback: str) -> list[tuple[str | None, str, str]]:
    """(cleaned text or None, reason, kind) for each report; never raises on a report's content."""
    results: list[tuple[str | None, str, str]] = []
    for name in relative:
        try:
            raw = _read_bytes(source, name)
        except FileNotFoundError:
            results.append((None, "report file is missing", "error"))
            continue
        try:
            report = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            results.append(
                (None, f"report is not valid UTF-8 ({error.reason} at byte {error.start})", "error")
            )
            continue
        parsed = report_text(report, fallback)
        results.append((parsed.text, parsed.reason or "", "filtered" if parsed.reason else ""))
    return results


def _parallel_reports(
    source: Path, relative: list[str], fallback: str, workers: int
) -> list[tuple[str | None, str, str]]:
    """Every report through :func:`read_reports`, in chunks over ``workers`` processes, in order."""
    chunks = [relative[i : i + CHUNK] for i in range(0, len(relative), CHUNK)]
    read = partial(read_reports, source, fallback=fallback)
    if workers <= 1 or len(chunks) <= 1:
        return list(progress(chain.from_iterable(map(read, chunks)), len(relative), "reports", "reports"))
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        return list(
            progress(chain.from_iterable(pool.map(read, chunks)), len(relative), "reports", "reports")
        )


def read(
    root: Path, settings: dict[str, Any], rejects: Rejects, workers: int = 1
) -> tuple[list[dict[str, object]], ManifestInfo]:
    chosen = settings_for("mimic", settings)
    files = label_files("mimic", root, settings)
    columns = ["dicom_id", "subject_id", "study_id", "ViewPosition"]
    metadata = pl.read_csv(files["metadata"], infer_schema=False, columns=columns)
    splits = pl.read_csv(files["split_file"], infer_schema=False, columns=["dicom_id", "split"])
    census = {
        "images": metadata.height,
        "studies": metadata["study_id"].n_unique(),
        "patients": metadata["subject_id"].n_unique(),
    }
    frontal = metadata.filter(pl.col("ViewPosition").is_in(FRONTAL)).join(splits, on="dicom_id", how="left")
    census["frontal images"] = frontal.height
    unknown_split = frontal.filter(~pl.col("split").is_in(list(SPLITS)) | pl.col("split").is_null())
    for dicom_id, split in unknown_split.select("dicom_id", "split").iter_rows():
        rejects.add(files["split_file"], None, dicom_id, f"no known split ({split})")
    frontal = frontal.filter(pl.col("split").is_in(list(SPLITS)))
    studies = frontal.select("subject_id", "study_id").unique(maintain_order=True)
    relative = [f"p{subject[:2]}/p{subject}/s{study}.txt" for subject, study in studies.iter_rows()]
    results = _parallel_reports(files["reports"], relative, str(chosen["fallback"]), workers)
    reports = studies.with_columns(
        pl.Series("text", [text for text, _, _ in results], dtype=pl.String),
        pl.Series("reason", [reason for _, reason, _ in results], dtype=pl.String),
        pl.Series("kind", [kind for _, _, kind in results], dtype=pl.String),
        pl.Series("report", relative, dtype=pl.String),
    )
    census["studies with a usable report"] = int(reports["text"].is_not_null().sum())
    reasons = Counter(reason for _, reason, _ in results if reason)
    for reason, count in reasons.most_common():
        log.info("mimic: %d reports rejected: %s", count, reason)
    paired = frontal.join(reports, on=["subject_id", "study_id"], how="left")
    for dicom_id, report, reason, kind in (
        paired.filter(pl.col("text").is_null()).select("dicom_id", "report", "reason", "kind").iter_rows()
    ):
        rejects.add(files["reports"] / report, None, dicom_id, reason, kind)
    images = root / str(chosen["images"])
    records = [
        {
            "id": dicom_id,
            "patient": subject,
            "path": str(images / f"p{subject[:2]}" / f"p{subject}" / f"s{study}" / f"{dicom_id}.jpg"),
            "text": text,
            "split": SPLITS[split],
        }
        for dicom_id, subject, study, split, text in paired.filter(pl.col("text").is_not_null())
        .select("dicom_id", "subject_id", "study_id", "split", "text")
        .iter_rows()
    ]
    return records, ManifestInfo("mimic", "pretrain", (), census)
