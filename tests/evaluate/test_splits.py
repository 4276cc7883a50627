"""protocol mgca trains and tests on exactly the samples MGCA's own code picks.

Each test runs MGCA's preprocessing and dataset loaders (``mgca/preprocess/{rsna,covidx,siim}.py``,
``mgca/datasets/*_dataset.py``), written out here in pandas from their description, on a dataset in
its real file layout (the demo's, or a hand-written fixture), and compares with ``adaptor subsets
--protocol mgca`` on the manifest of the same files.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn.model_selection import train_test_split

from adaptor import cli
from adaptor.data import manifest
from adaptor.data.manifest import Rejects
from adaptor.data.prepare import prepare
from adaptor.evaluate.splits import mgca_splits
from adaptor.evaluate.subsets import split_ids

FRACTIONS = ("0.1", "0.5", "1.0")


def _subsets(tmp_path: Path, root: Path, reader: str, task: str, protocol: str = "mgca") -> pl.DataFrame:
    frame, info, rejects = prepare(reader, reader, root, {}, on_error="skip")
    manifest.write(frame, info, tmp_path / "m.parquet")
    rejects.write_parquet(tmp_path / "prepare.rejects.parquet")
    Rejects(reader).frame().write_parquet(tmp_path / "none.parquet")
    out = tmp_path / f"{task}.{protocol}.parquet"
    cli.main(
        [
            *("subsets", "--manifest", str(tmp_path / "m.parquet"), "--out", str(out)),
            *("--fractions", *FRACTIONS, "--seeds", "0", "1"),
            *("--prepare-rejects", str(tmp_path / "prepare.rejects.parquet")),
            *("--protocol", protocol, "--task", task, "--reader", reader),
        ]
    )
    return pl.read_parquet(out)


def _trained(subsets: pl.DataFrame, fraction: float, seed: int = 0) -> set[str]:
    return set(subsets.filter((pl.col("fraction") == fraction) & (pl.col("seed") == seed))["id"])


def _mgca_three_way(frame: pd.DataFrame, test_size: float | int) -> tuple[pd.DataFrame, ...]:
    train_df, test_val_df = train_test_split(frame, test_size=test_size, random_state=0)
    test_df, valid_df = train_test_split(test_val_df, test_size=0.5, random_state=0)
    return tuple(df.reset_index(drop=True) for df in (train_df, valid_df, test_df))  # via to_csv / read_csv


def _mgca_rsna_patients(root: Path) -> pd.DataFrame:
    df = pd.read_csv(root / "stage_2_train_labels.csv")
    return df[["patientId", "Target"]].groupby("patientId").agg(list).reset_index()


def test_rsna_classification_is_mgcas_split_and_sample(tmp_path: Path, demo_root: Path) -> None:
    subsets = _subsets(tmp_path, demo_root / "rsna", "rsna", "classification")
    train_df, valid_df, test_df = _mgca_three_way(_mgca_rsna_patients(demo_root / "rsna"), 0.15 * 2)
    assert split_ids(subsets, "val") == valid_df["patientId"].tolist()
    assert split_ids(subsets, "test") == test_df["patientId"].tolist()
    assert _trained(subsets, 1.0) == set(train_df["patientId"])
    for fraction in (0.1, 0.5):
        expected = set(train_df.sample(frac=fraction, random_state=42)["patientId"])
        assert _trained(subsets, fraction) == _trained(subsets, fraction, seed=1) == expected


def test_rsna_segmentation_is_mgcas_detection_split(tmp_path: Path, demo_root: Path) -> None:
    subsets = _subsets(tmp_path, demo_root / "rsna", "rsna", "segmentation")
    patients = _mgca_rsna_patients(demo_root / "rsna")
    train_df, valid_df, test_df = _mgca_three_way(patients, round(len(patients) * 2 * 5337 / 26684))
    assert split_ids(subsets, "test") == test_df["patientId"].tolist()
    assert split_ids(subsets, "val") == valid_df["patientId"].tolist()
    for fraction in (0.1, 0.5, 1.0):
        np.random.seed(42)  # MGCA's segmenter: seed_everything(42), then RSNASegmentDataset
        indices = np.random.choice(len(train_df), int(fraction * len(train_df)), replace=False)
        assert _trained(subsets, fraction) == set(train_df["patientId"].to_numpy()[indices])


def test_rsna_segmentation_split_has_mgcas_sizes_on_the_full_dataset() -> None:
    frame = pl.DataFrame({"id": [f"p{i:05d}" for i in range(26684)], "rows": [[i + 2] for i in range(26684)]})
    sizes = {name: len(ids) for name, ids in mgca_splits(frame, "rsna", "segmentation")[0].items()}
    assert sizes == {"train": 16010, "val": 5337, "test": 5337}
    sizes = {name: len(ids) for name, ids in mgca_splits(frame, "rsna", "classification")[0].items()}
    assert sizes == {"train": 18678, "val": 4003, "test": 4003}


def test_covidx_is_mgcas_80_20_split_of_the_official_train_list(tmp_path: Path, demo_root: Path) -> None:
    subsets = _subsets(tmp_path, demo_root / "covidx", "covidx", "classification")
    columns = ["patient id", "filename", "class", "data source"]
    raw_train_df = pd.read_csv(
        demo_root / "covidx" / "train_COVIDx9A.txt", sep=" ", header=None, names=columns
    )
    train_df, valid_df = (
        df.reset_index(drop=True) for df in train_test_split(raw_train_df, train_size=0.8, random_state=0)
    )
    test_df = pd.read_csv(demo_root / "covidx" / "test_COVIDx9A.txt", sep=" ", header=None, names=columns)
    assert split_ids(subsets, "val") == ("train/" + valid_df["filename"]).tolist()
    assert split_ids(subsets, "test") == ("test/" + test_df["filename"]).tolist()
    for fraction in (0.1, 0.5, 1.0):
        chosen = train_df if fraction == 1 else train_df.sample(frac=fraction, random_state=42)
        assert _trained(subsets, fraction) == set("train/" + chosen["filename"])


def _mgca_siim(label_file: Path, fraction: float) -> tuple[pd.DataFrame, ...]:
    """MGCA's SIIM procedure, from its description: ``train-rle.csv`` rows split 70 / 15 / 15 with
    ``train_test_split(random_state=0)`` (test first, then validation); its segmentation loader for
    train, after ``seed_everything(42)``: every positive image and as many negative images drawn
    without replacement, then ``int(f * n)`` of those images for a fraction ``f`` below 1. The
    Adaptor authors' copy reads `` -1`` (with its leading space) as no mask."""
    df = pd.read_csv(label_file)
    train_df, valid_df, test_df = _mgca_three_way(df, 0.15 * 2)
    np.random.seed(42)
    train_df["class"] = train_df[" EncodedPixels"].str.strip() != "-1"
    df_neg, df_pos = train_df[~train_df["class"]], train_df[train_df["class"]]
    n_pos = df_pos["ImageId"].nunique()
    neg_series_selected = np.random.choice(df_neg["ImageId"].unique(), size=n_pos, replace=False)
    train_df = pd.concat([df_pos, df_neg[df_neg["ImageId"].isin(neg_series_selected)]])
    if fraction != 1:
        ids = train_df["ImageId"].unique()
        train_df = train_df[
            train_df["ImageId"].isin(np.random.choice(ids, size=int(len(ids) * fraction), replace=False))
        ]
    return train_df, valid_df, test_df


def _siim_root(real_layout: Callable[[str], Path]) -> Path:
    """The hand-written SIIM folder, with a file for the one ImageId it lacks a DICOM for: MGCA's
    code maps every ImageId to its DICOM and stops at one without."""
    root = real_layout("siim")
    image = "1.2.276.0.7230010.3.1.4.8323329.99999.1517875999.999999"
    (root / "dicom-images-train" / "extra" / "extra").mkdir(parents=True)
    (root / "dicom-images-train" / "extra" / "extra" / f"{image}.dcm").touch()
    return root


def _straddlers(splits: tuple[pd.DataFrame, ...]) -> set[str]:
    train, val, test = (set(df["ImageId"]) for df in splits)
    return (train & (val | test)) | (val & test)


def test_siim_mgca_is_mgcas_membership_exactly(tmp_path: Path, real_layout: Callable[[str], Path]) -> None:
    root = _siim_root(real_layout)
    subsets = _subsets(tmp_path, root, "siim", "segmentation")
    _, valid_df, test_df = _mgca_siim(root / "train-rle.csv", 1.0)
    assert len(_straddlers(_mgca_three_way(pd.read_csv(root / "train-rle.csv"), 0.15 * 2))) >= 3
    assert split_ids(subsets, "val") == valid_df["ImageId"].unique().tolist()
    assert split_ids(subsets, "test") == test_df["ImageId"].unique().tolist()
    for fraction in (0.1, 0.5, 1.0):
        train_df, _, _ = _mgca_siim(root / "train-rle.csv", fraction)
        assert _trained(subsets, fraction) == _trained(subsets, fraction, seed=1) == set(train_df["ImageId"])
    # each split sees only its own rows of a straddling image's mask, as MGCA's loader builds it
    lines = pd.read_csv(root / "train-rle.csv").assign(row=lambda df: df.index + 2)  # file line numbers
    train_rows, valid_rows, test_rows = _mgca_three_way(lines, 0.15 * 2)
    for split, frame in (("train", train_rows), ("val", valid_rows), ("test", test_rows)):
        whole = pl.col("fraction").is_null() | ((pl.col("fraction") == 1) & (pl.col("seed") == 0))
        held = subsets.filter((pl.col("split") == split) & whole)
        assert held.height > 0 and held["id"].is_unique().all()
        for image, rows in held.select("id", "rows").iter_rows():
            own = sorted(frame.loc[frame["ImageId"] == image, "row"])
            assert (rows or own) == own and (rows is None) == (len(own) == (lines["ImageId"] == image).sum())
    assert subsets.filter(pl.col("rows").is_not_null())["split"].n_unique() == 3


def test_siim_mgca_clean_moves_straddlers_to_their_latest_split(
    tmp_path: Path, real_layout: Callable[[str], Path]
) -> None:
    root = _siim_root(real_layout)
    clean = _subsets(tmp_path, root, "siim", "segmentation", "mgca_clean")
    splits = _mgca_three_way(pd.read_csv(root / "train-rle.csv"), 0.15 * 2)
    train, val, test = (set(df["ImageId"]) for df in splits)
    straddling = _straddlers(splits)
    assert set(split_ids(clean, "test")) == test
    assert set(split_ids(clean, "val")) == val - test
    assert _trained(clean, 1.0) <= train - val - test and not _trained(clean, 1.0) & straddling
    assert clean["rows"].is_null().all()  # whole images only
    assert set(clean["protocol"]) == {"mgca_clean"}


def test_absent_images_hold_their_places_in_mgcas_split(
    tmp_path: Path, real_layout: Callable[[str], Path]
) -> None:
    """A COVIDx image missing on disk (an incomplete download) leaves MGCA's split without moving
    any other image: the rest equals MGCA's split of the full list, minus the missing one."""
    root = real_layout("covidx")
    (root / "train" / "COVID-00012.jpg").unlink()
    subsets = _subsets(tmp_path, root, "covidx", "classification")
    columns = ["patient id", "filename", "class", "data source"]
    raw_train_df = pd.read_csv(root / "train_COVIDx9A.txt", sep=" ", header=None, names=columns)
    train_df, valid_df = (
        df.reset_index(drop=True) for df in train_test_split(raw_train_df, train_size=0.8, random_state=0)
    )
    missing = "train/COVID-00012.jpg"
    assert split_ids(subsets, "val") == [i for i in "train/" + valid_df["filename"] if i != missing]
    for fraction in (0.1, 0.5, 1.0):
        chosen = train_df if fraction == 1 else train_df.sample(frac=fraction, random_state=42)
        assert _trained(subsets, fraction) == set("train/" + chosen["filename"]) - {missing}


def test_chexpert_has_mgcas_test_split_for_zeroshot_and_no_training_split(
    tmp_path: Path, demo_root: Path
) -> None:
    subsets = _subsets(tmp_path, demo_root / "chexpert", "chexpert", "zeroshot")
    official_valid = pd.read_csv(demo_root / "chexpert" / "CheXpert-v1.0-small" / "valid.csv")
    frontal = official_valid[official_valid["Frontal/Lateral"] == "Frontal"]["Path"]
    assert sorted(split_ids(subsets, "test")) == sorted(frontal) and len(frontal) > 0
    assert subsets.filter(pl.col("split") != "test").is_empty()
    with pytest.raises(ValueError, match="CheXpert train / validation split is not reproduced"):
        _subsets(tmp_path, demo_root / "chexpert", "chexpert", "classification")
    with pytest.raises(ValueError, match="not for 'mimic'"):
        mgca_splits(pl.DataFrame({"id": ["a"]}), "mimic", "classification")


def test_mgca_refuses_a_manifest_without_label_file_rows() -> None:
    rows = [[i + 2] for i in range(10)] + [None]  # the test sample's rows are unknown
    frame = pl.DataFrame(
        {"id": [f"s{i}" for i in range(11)], "split": ["train"] * 10 + ["test"], "rows": rows}
    )
    with pytest.raises(ValueError, match="label-file rows"):
        mgca_splits(frame, "covidx", "classification")
