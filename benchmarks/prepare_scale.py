"""``prepare`` on MIMIC-CXR-JPG at its real size: seconds and peak memory, as JSON.

Synthesises the tables and files at MIMIC-CXR-JPG 2.0.0's counts (377,110 metadata rows, 227,827
studies, 65,379 patients, one report per study in the report variants real ones have, an empty
file per image), then times ``python -m adaptor prepare`` on them as the rule runs it, sampling the
resident memory of its whole process tree (the report-reading workers included).

    python benchmarks/prepare_scale.py --workers 2            # the full size; about 1 GB of small files
    python benchmarks/prepare_scale.py --scale 0.05           # a quick look
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

IMAGES, STUDIES, PATIENTS = 377_110, 227_827, 65_379
FRONTAL_SHARE = 0.645  # PA + AP among all images in MIMIC-CXR-JPG
REPORTS = (
    " FINAL REPORT\n EXAMINATION:  CHEST (PA AND LAT)\n \n INDICATION:  ___ with cough.\n \n"
    " FINDINGS: \n \n The lungs are clear. No effusion or pneumothorax. Heart size: normal.\n \n"
    " IMPRESSION: \n \n No acute cardiopulmonary process.\n",
    "FINAL REPORT\n Findings :   Right lower lobe opacity.\n\n  Impression:   Right lower lobe pneumonia.\n",
    " FINAL REPORT\n INDICATION:  Line.\n \n FINDNGS:  Catheter tip in the SVC.\n \n"
    " IMPRESSON:  No pneumothorax.\n",
    " FINAL REPORT\n \n PA and lateral views were obtained.\n \n Stable mild cardiomegaly. No edema.\n",
    " FINAL ADDENDUM\n ADDENDUM:\n Findings were discussed with Dr. ___ at 3:15 pm.\n",
    " WET READ: ___ 9:41 PM\n  Subtle opacity.\n FINAL REPORT\n FINDINGS:  Patchy opacity.\n \n"
    " IMPRESSION:  Left lower lobe pneumonia.\n",
)


def _csv_gz(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with gzip.open(path, "wt", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def synthesise(root: Path, scale: float, seed: int = 0) -> dict[str, int]:
    """MIMIC-CXR-JPG's layout at ``scale`` x its counts: metadata, split, reports and empty images."""
    rng = np.random.default_rng(seed)
    n_images, n_studies, n_patients = (max(1, round(n * scale)) for n in (IMAGES, STUDIES, PATIENTS))
    study_patient = np.sort(rng.integers(0, n_patients, n_studies))
    image_study = np.concatenate([np.arange(n_studies), rng.integers(0, n_studies, n_images - n_studies)])
    views = np.where(rng.random(n_images) < FRONTAL_SHARE, rng.choice(["PA", "AP"], n_images), "LATERAL")
    subjects = [str(10_000_000 + p) for p in study_patient]
    studies = [str(50_000_000 + s) for s in range(n_studies)]
    metadata, splits = [], []
    for index, (study, view) in enumerate(zip(image_study, views, strict=True)):
        dicom = f"{index:08x}-00000000-00000000-00000000-00000000"
        metadata.append([dicom, subjects[study], studies[study], view])
        splits.append([dicom, studies[study], subjects[study], "train" if index % 50 else "validate"])
        if view != "LATERAL":
            folder = root / "files" / f"p{subjects[study][:2]}" / f"p{subjects[study]}" / f"s{studies[study]}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{dicom}.jpg").touch()
    for study, subject in enumerate(subjects):
        report = root / "files" / f"p{subject[:2]}" / f"p{subject}" / f"s{studies[study]}.txt"
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(REPORTS[study % len(REPORTS)])
    _csv_gz(
        root / "mimic-cxr-2.0.0-metadata.csv.gz",
        ["dicom_id", "subject_id", "study_id", "ViewPosition"],
        metadata,
    )
    _csv_gz(root / "mimic-cxr-2.0.0-split.csv.gz", ["dicom_id", "study_id", "subject_id", "split"], splits)
    return {"metadata_rows": n_images, "studies": n_studies, "patients": n_patients, "reports": n_studies}


def run_prepare(root: Path, out: Path, workers: int) -> dict[str, float]:
    """Time the prepare command and sample its process tree's resident memory every 50 ms."""
    settings = json.dumps({"reader": "mimic", "root": str(root)})
    command = [sys.executable, "-m", "adaptor", "prepare", "--dataset", "mimic", "--settings", settings]
    command += ["--on-error", "skip", "--workers", str(workers)]
    command += ["--out", str(out / "mimic.parquet"), "--rejects", str(out / "mimic.rejects.parquet")]
    started = time.perf_counter()
    process = psutil.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0
    while process.poll() is None:
        try:
            tree = [process, *process.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree))
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    if process.returncode:
        raise SystemExit(f"prepare failed:\n{process.stderr.read()[-3000:]}")
    return {"seconds": round(seconds, 1), "peak_rss_gb": round(peak / 2**30, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="share of MIMIC-CXR-JPG's counts")
    parser.add_argument("--workers", type=int, default=2, help="report-reading processes")
    parser.add_argument("--root", type=Path, help="where to synthesise (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.root or Path(scratch) / "mimic-cxr-jpg"
        started = time.perf_counter()
        counts = synthesise(root, args.scale)
        setup = time.perf_counter() - started
        measured = run_prepare(root, Path(scratch), args.workers)
        import polars as pl

        manifest = pl.read_parquet(Path(scratch) / "mimic.parquet")
        rejects = pl.read_parquet(Path(scratch) / "mimic.rejects.parquet")
    result = counts | {
        "workers": args.workers,
        "cpu_count": psutil.cpu_count(),
        "synthesis_seconds": round(setup, 1),
        **measured,
        "manifest_rows": manifest.height,
        "rejected": dict(rejects.group_by("reason").len().sort("reason").iter_rows()),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
