"""Every reader on the demo's real-layout files, and the rejects path for bad input."""

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import ndimage

from adaptor.data import manifest
from adaptor.data.demo.writers import rle_encode
from adaptor.data.images import read_grey
from adaptor.data.manifest import ManifestInfo
from adaptor.data.prepare import prepare
from adaptor.data.siim import rle_decode
from adaptor.errors import ManifestError


def test_mimic_keeps_frontal_views_with_cleaned_reports(demo_root: Path) -> None:
    frame, info, rejects = prepare("mimic", "mimic", demo_root / "mimic", {})
    assert info.task == "pretrain"
    assert frame["id"].is_unique().all()
    assert set(frame["split"]) <= {"train", "val"}
    assert frame["text"].str.contains(r"[A-Z.]").sum() == 0  # lower-case, punctuation removed
    metadata = pl.read_csv(demo_root / "mimic" / "mimic-cxr-2.0.0-metadata.csv.gz", infer_schema=False)
    laterals = metadata.filter(pl.col("ViewPosition") == "LATERAL")["dicom_id"]
    assert laterals.len() == 3 and not set(laterals) & set(frame["id"])
    assert len(frame) + rejects.filter(pl.col("kind") == "filtered").height == 30
    assert all(Path(p).exists() for p in frame["path"])


def test_rsna_joins_boxes_per_patient(demo_root: Path) -> None:
    frame, info, _ = prepare("rsna", "rsna", demo_root / "rsna", {})
    assert info.task == "binary" and len(frame) == 40
    positive = frame.filter(pl.col("labels").list.first() == 1.0)
    assert positive.height > 0
    assert (positive["boxes"].list.len() >= 1).all()
    assert (frame.filter(pl.col("labels").list.first() == 0.0)["boxes"].list.len() == 0).all()
    x, y, width, height = (int(v) for v in positive["boxes"][0][0])
    pixels = read_grey(positive["path"][0]).astype(float)
    assert pixels[y : y + height, x : x + width].mean() > pixels[y : y + height].mean() - 5


def test_covidx_reads_label_files_and_splits_validation(demo_root: Path) -> None:
    frame, info, _ = prepare("covidx", "covidx", demo_root / "covidx", {"version": "9A"})
    assert info.classes == ("normal", "pneumonia", "COVID-19")
    assert set(frame["split"]) == {"train", "val", "test"}
    assert set(frame["labels"].list.first()) <= {0.0, 1.0, 2.0}
    with pytest.raises(FileNotFoundError, match=r"train_COVIDx5\.txt \(setting train_list, version '5'\)"):
        prepare("covidx", "covidx", demo_root / "covidx", {"version": "5"})


def test_chexpert_maps_uncertain_and_blank(demo_root: Path) -> None:
    zeros, info, _ = prepare("chexpert", "chexpert", demo_root / "chexpert", {"uncertain": "zeros"})
    ones, _, _ = prepare("chexpert", "chexpert", demo_root / "chexpert", {"uncertain": "ones"})
    assert info.task == "multilabel" and len(info.classes) == 5
    assert np.asarray(ones["labels"].to_list()).sum() >= np.asarray(zeros["labels"].to_list()).sum()
    train_patients = set(zeros.filter(pl.col("split") == "train")["patient"])
    assert not train_patients & set(zeros.filter(pl.col("split") == "val")["patient"])
    assert (zeros["split"] == "test").sum() == 10  # official valid.csv


def test_siim_rle_round_trip_and_leading_spaces(demo_root: Path) -> None:
    frame, info, _ = prepare("siim", "siim", demo_root / "siim", {})
    assert info.task == "segmentation" and len(frame) == 24
    assert (demo_root / "siim" / "train-rle.csv").read_text().startswith("ImageId, EncodedPixels")
    positive = frame.filter(pl.col("labels").list.first() == 1.0)
    mask = rle_decode(positive["mask"][0][0], 64, 64)
    assert mask.any() and rle_encode(mask) == positive["mask"][0][0]
    pixels = read_grey(positive["path"][0]).astype(float)
    assert pixels[mask].mean() < pixels[ndimage.binary_dilation(mask, iterations=4) & ~mask].mean() - 10
    odd = np.zeros((5, 4), dtype=bool)
    odd[1:3, 0] = odd[4, 3] = True
    assert np.array_equal(rle_decode(rle_encode(odd), 5, 4), odd)


def test_malformed_row_fails_naming_file_and_row(tmp_path: Path, demo_root: Path) -> None:
    root = tmp_path / "rsna"
    root.mkdir()
    (root / "stage_2_train_images").symlink_to(demo_root / "rsna" / "stage_2_train_images")
    lines = (demo_root / "rsna" / "stage_2_train_labels.csv").read_text().splitlines()
    lines.insert(3, "broken-patient,,,,,maybe")
    (root / "stage_2_train_labels.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ManifestError, match=r"stage_2_train_labels.csv row 4"):
        prepare("rsna", "rsna", root, {})
    frame, _, rejects = prepare("rsna", "rsna", root, {}, on_error="skip")
    assert len(frame) == 40
    assert rejects.height == 1 and rejects["row"][0] == 4 and "maybe" in rejects["reason"][0]


def test_report_that_is_not_utf8_is_an_error_naming_the_file(tmp_path: Path, demo_root: Path) -> None:
    import shutil

    root = tmp_path / "mimic"
    shutil.copytree(demo_root / "mimic", root)
    report = sorted((root / "files").rglob("s*.txt"))[0]
    report.write_bytes(b"FINDINGS: heart size normal \xff lungs clear.")
    with pytest.raises(ManifestError, match=rf"{report.name}.*not valid UTF-8"):
        prepare("mimic", "mimic", root, {})
    _, _, rejects = prepare("mimic", "mimic", root, {}, on_error="skip")
    assert rejects.filter(pl.col("kind") == "error")["source"].to_list() == [str(report)]


def test_missing_image_is_rejected_and_counted(tmp_path: Path, demo_root: Path) -> None:
    root = tmp_path / "covidx"
    root.mkdir()
    for name in ("train_COVIDx9A.txt", "test_COVIDx9A.txt"):
        (root / name).write_text((demo_root / "covidx" / name).read_text())
    (root / "test").symlink_to(demo_root / "covidx" / "test")
    with pytest.raises(ManifestError, match="image file is missing"):
        prepare("covidx", "covidx", root, {})
    frame, _, rejects = prepare("covidx", "covidx", root, {}, on_error="skip")
    assert rejects.height + len(frame) == 40 and rejects.height > 0
    assert set(rejects["reason"]) == {"image file is missing"}


def test_manifest_round_trip_and_duplicate_ids(tmp_path: Path) -> None:
    info = ManifestInfo("toy", "binary", ("Pneumonia",))
    records = [{"id": "a", "patient": "p", "path": "x.png", "labels": [1.0], "split": "train"}]
    frame = manifest.build(records, info)
    manifest.write(frame, info, tmp_path / "m.parquet")
    again, info_again = manifest.read(tmp_path / "m.parquet")
    assert info_again == info and again.equals(frame)
    with pytest.raises(ManifestError, match="duplicate"):
        manifest.build(records * 2, info)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        prepare("toy", "rsna", tmp_path / "nowhere", {})
