"""protocol mgca trains and tests on exactly the samples MGCA's own code picks.

Each test runs a line-for-line pandas replica of MGCA's preprocessing and dataset loaders
(``mgca/preprocess/{rsna,covidx,siim}.py``, ``mgca/datasets/*_dataset.py``) on a demo dataset in its
real file layout, and compares with ``adaptor subsets --protocol mgca`` on the manifest of the same
files.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn.model_selection import train_test_split

from adaptor import cli
from adaptor.data import manifest
from adaptor.data.demo.writers import WRITERS
from adaptor.data.manifest import Rejects
from adaptor.data.prepare import prepare
from adaptor.evaluate.run import split_ids
from adaptor.evaluate.splits import mgca_splits

FRACTIONS = ("0.1", "0.5", "1.0")


def _subsets(tmp_path: Path, root: Path, reader: str, task: str) -> pl.DataFrame:
    frame, info, _ = prepare(reader, reader, root, {})
    manifest.write(frame, info, tmp_path / "m.parquet")
    Rejects(reader).frame().write_parquet(tmp_path / "none.parquet")
    out = tmp_path / f"{task}.parquet"
    cli.main(
        [
            *("subsets", "--manifest", str(tmp_path / "m.parquet"), "--out", str(out)),
            *("--fractions", *FRACTIONS, "--seeds", "0", "1", "--exclude", str(tmp_path / "none.parquet")),
            *("--protocol", "mgca", "--task", task, "--reader", reader),
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
    frame = pl.DataFrame({"id": [f"p{i:05d}" for i in range(26684)]})
    sizes = {name: len(ids) for name, ids in mgca_splits(frame, "rsna", "segmentation").items()}
    assert sizes == {"train": 16010, "val": 5337, "test": 5337}
    sizes = {name: len(ids) for name, ids in mgca_splits(frame, "rsna", "classification").items()}
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


@pytest.fixture(scope="module")
def siim_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every positive gets a second mask row at the end of the file, so some straddle MGCA's splits."""
    root = tmp_path_factory.mktemp("siim")
    WRITERS["siim"](root, 160, 64, 5)
    lines = (root / "train-rle.csv").read_text().splitlines()
    (root / "train-rle.csv").write_text(
        "\n".join([*lines, *(x for x in lines[1:] if x[-3:] != " -1")]) + "\n"
    )
    return root


def test_siim_is_mgcas_row_split_with_negatives_balanced(tmp_path: Path, siim_root: Path) -> None:
    subsets = _subsets(tmp_path, siim_root, "siim", "segmentation")
    df = pd.read_csv(siim_root / "train-rle.csv")
    df["EncodedPixels"] = df[" EncodedPixels"].str.strip()
    train_df, valid_df, test_df = _mgca_three_way(df, 0.15 * 2)
    # an image whose mask rows straddle MGCA's splits is kept out of the earlier ones
    in_test, in_val = set(test_df["ImageId"]), set(valid_df["ImageId"])
    straddling = (set(train_df["ImageId"]) & (in_val | in_test)) | (in_val & in_test)
    assert straddling, "the fixture should exercise straddling images"
    assert split_ids(subsets, "test") == list(dict.fromkeys(test_df["ImageId"]))
    assert split_ids(subsets, "val") == [i for i in dict.fromkeys(valid_df["ImageId"]) if i not in in_test]
    train_df = train_df[~train_df["ImageId"].isin(in_val | in_test)].reset_index(drop=True)
    for fraction in (0.1, 0.5, 1.0):
        # MGCA's SIIMImageDataset(split="train"), after seed_everything(42)
        np.random.seed(42)
        train_df["class"] = train_df["EncodedPixels"] != "-1"
        df_neg, df_pos = train_df[~train_df["class"]], train_df[train_df["class"]]
        n_pos = df_pos["ImageId"].nunique()
        neg_series_selected = np.random.choice(df_neg["ImageId"].unique(), size=n_pos, replace=False)
        balanced = pd.concat([df_pos, df_neg[df_neg["ImageId"].isin(neg_series_selected)]])
        ids = balanced["ImageId"].unique()
        if fraction != 1:
            ids = np.random.choice(ids, size=int(len(ids) * fraction), replace=False)
        assert _trained(subsets, fraction) == set(ids)
        assert len(_trained(subsets, 1.0)) == 2 * n_pos


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
