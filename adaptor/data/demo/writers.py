"""Write rendered demo sets in the real datasets' on-disk layouts.

Each writer takes an output root, a sample count, an image size and a seed, and writes exactly the
files its real dataset has (names, CSV quirks, DICOM), so ``prepare`` reads them with the readers
a user's real copy goes through.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from adaptor.data.demo.iu_reports import read_iu_reports
from adaptor.data.demo.render import Finding, render

CHEXPERT_LABELS = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
# CheXpert label -> the finding that shows it.
_CHEXPERT_FINDING = {
    "Cardiomegaly": Finding("cardiomegaly"),
    "Edema": Finding("edema"),
    "Consolidation": Finding("opacity", severity=1.2),
    "Atelectasis": Finding("atelectasis", zone="lower"),
    "Pleural Effusion": Finding("effusion"),
    "Pneumothorax": Finding("pneumothorax"),
    "Lung Lesion": Finding("nodule"),
    "Support Devices": Finding("device"),
}
_CHEXPERT_PREVALENCE = {
    "Cardiomegaly": 0.25,
    "Edema": 0.2,
    "Consolidation": 0.2,
    "Atelectasis": 0.25,
    "Pleural Effusion": 0.3,
    "Pneumothorax": 0.08,
    "Lung Lesion": 0.08,
    "Support Devices": 0.2,
}


def _hex_id(*parts: object, length: int = 32) -> str:
    """A stable pseudo-random identifier (the layouts use UUID-like hex names)."""
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:length]


def _side(rng: np.random.Generator) -> str:
    return str(rng.choice(["left", "right"]))


def _zone(rng: np.random.Generator) -> str:
    return str(rng.choice(["upper", "middle", "lower"]))


def write_dicom(
    path: Path, pixels: np.ndarray, patient_id: str, seed: int, monochrome1: bool = False
) -> None:
    """Write an uncompressed 8-bit DICOM; MONOCHROME1 stores inverted pixels, as some scanners do."""
    path.parent.mkdir(parents=True, exist_ok=True)
    uid = generate_uid(entropy_srcs=[str(seed), patient_id])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = uid
    ds.PatientID = patient_id
    ds.Modality = "CR"
    ds.ViewPosition = "PA"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = (255 - pixels if monochrome1 else pixels).tobytes()
    pydicom.dcmwrite(path, ds, enforce_file_format=True)


def _save(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, quality=92) if path.suffix == ".jpg" else Image.fromarray(pixels).save(
        path
    )


def _write_csv_gz(path: Path, header: list[str], rows: Sequence[Sequence[object]]) -> None:
    with gzip.open(path, "wt", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def write_mimic(root: Path, n_reports: int | None, size: int, seed: int) -> int:
    """MIMIC-CXR-JPG layout: files/pXX/pSUBJECT/sSTUDY/<dicom_id>.jpg, report .txt, metadata CSVs.

    Every IU report becomes one study with a frontal image showing its findings; one study in ten
    also gets a lateral view, which ``prepare`` must drop.
    """
    reports = read_iu_reports(limit=n_reports)
    metadata, splits, chexpert = [], [], []
    for index, report in enumerate(reports):
        subject, study = 10_000_000 + index, 50_000_000 + index
        study_dir = root / "files" / f"p{str(subject)[:2]}" / f"p{subject}"
        text = "                                 FINAL REPORT\n EXAMINATION: CHEST (PA AND LAT)\n\n"
        text += f" FINDINGS:\n {report.findings}\n\n IMPRESSION:\n {report.impression}\n"
        study_dir.mkdir(parents=True, exist_ok=True)
        (study_dir / f"s{study}.txt").write_text(text)
        bucket = int(_hex_id(seed, subject), 16) % 100
        split = "test" if bucket < 4 else "validate" if bucket < 8 else "train"
        views = ["PA"] + (["LATERAL"] if index % 10 == 3 else [])
        pixels = render(report.rendered, seed=seed * 1_000_003 + index, size=size).pixels  # once per study
        for view in views:
            dicom_id = "-".join(_hex_id(seed, study, view, length=40)[i : i + 8] for i in range(0, 40, 8))
            _save(study_dir / f"s{study}" / f"{dicom_id}.jpg", pixels.T if view == "LATERAL" else pixels)
            metadata.append([dicom_id, subject, study, "CHEST (PA AND LAT)", view, size, size])
            splits.append([dicom_id, study, subject, split])
        kinds = {f.kind for f in report.rendered}
        chexpert.append(
            [
                subject,
                study,
                *[
                    "1.0" if kind in kinds else ""
                    for kind in ("cardiomegaly", "edema", "effusion", "pneumothorax", "atelectasis")
                ],
            ]
        )
    _write_csv_gz(
        root / "mimic-cxr-2.0.0-metadata.csv.gz",
        [
            "dicom_id",
            "subject_id",
            "study_id",
            "PerformedProcedureStepDescription",
            "ViewPosition",
            "Rows",
            "Columns",
        ],
        metadata,
    )
    _write_csv_gz(
        root / "mimic-cxr-2.0.0-split.csv.gz", ["dicom_id", "study_id", "subject_id", "split"], splits
    )
    _write_csv_gz(
        root / "mimic-cxr-2.0.0-chexpert.csv.gz",
        [
            "subject_id",
            "study_id",
            "Cardiomegaly",
            "Edema",
            "Pleural Effusion",
            "Pneumothorax",
            "Atelectasis",
        ],
        chexpert,
    )
    return len(metadata)


def _rsna_findings(rng: np.random.Generator) -> tuple[int, list[Finding]]:
    if rng.random() < 0.3:
        n_boxes = 1 + int(rng.random() < 0.4)
        sides = ["left", "right"] if n_boxes == 2 else [_side(rng)]
        return 1, [
            Finding("opacity", side=s, zone=_zone(rng), severity=float(rng.uniform(0.5, 1.0))) for s in sides
        ]
    distractors = [
        Finding("nodule", _side(rng), _zone(rng)),
        Finding("cardiomegaly"),
        Finding("device"),
        Finding("effusion", _side(rng), severity=0.7),
    ]
    return 0, ([distractors[int(rng.integers(len(distractors)))]] if rng.random() < 0.4 else [])


def write_rsna(root: Path, n: int, size: int, seed: int) -> int:
    """RSNA Pneumonia layout: stage_2_train_labels.csv (one row per box) and DICOMs, some MONOCHROME1."""
    rng = np.random.default_rng([seed, 11])
    rows: list[list[object]] = []
    for index in range(n):
        patient = "-".join(
            _hex_id("rsna", seed, index)[i : i + s] for i, s in ((0, 8), (8, 4), (12, 4), (16, 4), (20, 12))
        )
        target, findings = _rsna_findings(rng)
        image = render(findings, seed=seed * 2_000_003 + index, size=size)
        write_dicom(
            root / "stage_2_train_images" / f"{patient}.dcm",
            image.pixels,
            patient,
            seed,
            monochrome1=index % 7 == 0,
        )
        boxes = [region.box() for region in image.regions if region.kind == "opacity"]
        rows += [[patient, *box, 1] for box in boxes] if target else [[patient, "", "", "", "", 0]]
    with open(root / "stage_2_train_labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patientId", "x", "y", "width", "height", "Target"])
        writer.writerows(rows)
    return n


def write_covidx(root: Path, n: int, size: int, seed: int, version: str = "9A") -> int:
    """COVIDx layout: train/ and test/ images; labels in ``{train,test}_COVIDx<version>.txt``."""
    rng = np.random.default_rng([seed, 12])
    lines: dict[str, list[str]] = {"train": [], "test": []}
    for index in range(n):
        label = str(rng.choice(["normal", "pneumonia", "COVID-19"], p=[0.4, 0.35, 0.25]))
        if label == "pneumonia":
            findings = [Finding("opacity", _side(rng), _zone(rng), severity=float(rng.uniform(1.0, 1.3)))]
        elif label == "COVID-19":
            findings = [
                Finding("opacity", "bilateral", str(rng.choice(["middle", "lower"])), pattern="hazy", count=2)
            ]
        else:
            findings = []
        split = "test" if index % 5 == 0 else "train"
        filename = f"{_hex_id('covidx', seed, index, length=12)}.png"
        _save(root / split / filename, render(findings, seed=seed * 3_000_017 + index, size=size).pixels)
        lines[split].append(f"{index // 2 + 1000} {filename} {label} demo")
    for split, entries in lines.items():
        (root / f"{split}_COVIDx{version}.txt").write_text("\n".join(entries) + "\n")
    return n


def _chexpert_labels(rng: np.random.Generator, uncertain: bool) -> tuple[dict[str, str], list[Finding]]:
    values: dict[str, str] = dict.fromkeys(CHEXPERT_LABELS, "")
    findings: list[Finding] = []
    for label, prevalence in _CHEXPERT_PREVALENCE.items():
        if rng.random() < prevalence:
            base = _CHEXPERT_FINDING[label]
            findings.append(
                Finding(
                    base.kind,
                    side=_side(rng)
                    if base.kind in ("effusion", "pneumothorax", "opacity", "nodule", "atelectasis")
                    else base.side,
                    zone=base.zone if base.zone != "any" else _zone(rng),
                    severity=base.severity,
                )
            )
            values[label] = "-1.0" if uncertain and rng.random() < 0.1 else "1.0"
        elif not uncertain or rng.random() < 0.3:
            values[label] = "0.0"
    if any(f.kind in ("opacity", "edema", "atelectasis") for f in findings):
        values["Lung Opacity"] = "1.0"
    values["No Finding"] = "" if findings else "1.0"
    return values, findings


def write_chexpert(root: Path, n: int, size: int, seed: int, n_valid: int = 200) -> int:
    """CheXpert-v1.0-small layout: train.csv / valid.csv with 1 / 0 / -1 / blank labels and JPEGs."""
    rng = np.random.default_rng([seed, 13])
    base = root / "CheXpert-v1.0-small"
    header = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *CHEXPERT_LABELS]
    for split, count, offset in (("valid", min(n_valid, n // 4), 0), ("train", n - min(n_valid, n // 4), n)):
        rows = []
        for index in range(offset, offset + count):
            values, findings = _chexpert_labels(rng, uncertain=split == "train")
            relative = f"CheXpert-v1.0-small/{split}/patient{index + 1:05d}/study1/view1_frontal.jpg"
            _save(root / relative, render(findings, seed=seed * 4_000_037 + index, size=size).pixels)
            sex = "Female" if rng.random() < 0.5 else "Male"
            rows.append([relative, sex, int(rng.integers(18, 90)), "Frontal", "PA", *values.values()])
        base.mkdir(parents=True, exist_ok=True)
        with open(base / f"{split}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
    return n


def rle_encode(mask: np.ndarray) -> str:
    """SIIM run-length encoding: column-major pixels, (relative start, length) pairs."""
    flat = mask.T.flatten().astype(np.int8)
    changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [0]])))
    starts, ends = changes[::2], changes[1::2]
    relative = starts - np.concatenate([[0], ends[:-1]])
    return " ".join(f"{s} {e - b}" for s, b, e in zip(relative, starts, ends, strict=True))


def write_siim(root: Path, n: int, size: int, seed: int) -> int:
    """SIIM-ACR layout: train-rle.csv (header ``ImageId, EncodedPixels``; `` -1`` for no mask) and DICOMs."""
    rng = np.random.default_rng([seed, 14])
    lines = ["ImageId, EncodedPixels"]
    for index in range(n):
        image_id = f"1.2.276.0.7230010.3.1.4.{seed}.{index}"
        positive = rng.random() < 0.25
        side = str(rng.choice(["left", "right", "bilateral"], p=[0.45, 0.45, 0.1]))
        findings = (
            [Finding("pneumothorax", side=side, severity=float(rng.uniform(0.8, 1.4)))] if positive else []
        )
        image = render(findings, seed=seed * 5_000_011 + index, size=size)
        study, series = (
            _hex_id("siim-study", seed, index, length=16),
            _hex_id("siim-series", seed, index, length=16),
        )
        write_dicom(
            root / "dicom-images-train" / study / series / f"{image_id}.dcm", image.pixels, image_id, seed
        )
        masks = [region.mask for region in image.regions if region.kind == "pneumothorax"]
        lines += [f"{image_id}, {rle}" for rle in map(rle_encode, masks)] if masks else [f"{image_id}, -1"]
    (root / "train-rle.csv").write_text("\n".join(lines) + "\n")
    return n


WRITERS = {
    "mimic": write_mimic,
    "rsna": write_rsna,
    "covidx": write_covidx,
    "chexpert": write_chexpert,
    "siim": write_siim,
}
