"""CheXpert on a hand-written folder in its real layout (``tests/fixtures/chexpert``): 1.0 / 0.0 /
-1.0 / blank labels, lateral views, a patient with two studies, the official valid set."""

import math
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from adaptor.data.chexpert import uncertain_values
from adaptor.data.prepare import prepare
from adaptor.data.releases import CHEXPERT_COMPETITION
from adaptor.errors import SettingsError

ALL_UNCERTAIN = "CheXpert-v1.0-small/train/patient00002/study2/view1_frontal.jpg"  # -1 in all five classes
BLANK = "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg"  # blank in all five


def _labels(root: Path, uncertain: object) -> dict[str, list[float]]:
    frame, _, _ = prepare("chexpert", "chexpert", root, {"uncertain": uncertain})
    return dict(frame.select("id", "labels").iter_rows())


def test_uncertain_policies(real_layout: Callable[[str], Path]) -> None:
    root = real_layout("chexpert")
    assert CHEXPERT_COMPETITION == (
        "Atelectasis",
        "Cardiomegaly",
        "Consolidation",
        "Edema",
        "Pleural Effusion",
    )
    assert _labels(root, "zeros")[ALL_UNCERTAIN] == [0.0] * 5
    assert _labels(root, "ones")[ALL_UNCERTAIN] == [1.0] * 5
    assert all(math.isnan(v) for v in _labels(root, "ignore")[ALL_UNCERTAIN])
    # the CheXpert paper's choice: U-Ones for Atelectasis and Edema, U-Zeros for the others
    assert _labels(root, "chexpert_paper")[ALL_UNCERTAIN] == [1.0, 0.0, 0.0, 1.0, 0.0]
    per_class = {"Atelectasis": "ignore", "Cardiomegaly": "ones"} | dict.fromkeys(
        ("Consolidation", "Edema", "Pleural Effusion"), "zeros"
    )
    mapped = _labels(root, per_class)[ALL_UNCERTAIN]
    assert math.isnan(mapped[0]) and mapped[1:] == [1.0, 0.0, 0.0, 0.0]
    for policy in ("zeros", "ones", "ignore", "chexpert_paper"):
        assert _labels(root, policy)[BLANK] == [0.0] * 5  # blank: not mentioned, negative


def test_definite_labels_frontal_views_and_splits(real_layout: Callable[[str], Path]) -> None:
    root = real_layout("chexpert")
    frame, info, _ = prepare("chexpert", "chexpert", root, {})
    assert info.classes == CHEXPERT_COMPETITION and info.task == "multilabel"
    assert not frame["id"].str.contains("lateral").any()
    assert info.census == {"train images": 12, "valid images": 4, "frontal images": 13}
    labels = dict(frame.select("id", "labels").iter_rows())
    # patient00006: Cardiomegaly 1.0, Edema 1.0, Atelectasis -1.0, Pleural Effusion 1.0
    assert labels["CheXpert-v1.0-small/train/patient00006/study1/view1_frontal.jpg"] == [
        0.0,
        1.0,
        0.0,
        1.0,
        1.0,
    ]
    assert (frame["split"] == "test").sum() == 3  # the official valid set's frontal views
    train = set(frame.filter(pl.col("split") == "train")["patient"])
    assert not train & set(frame.filter(pl.col("split") == "val")["patient"])
    assert frame.filter(pl.col("patient") == "patient00002")["split"].n_unique() == 1  # two studies, one side
    assert Path(frame["path"][0]).is_file()


def test_the_full_size_release_folder_is_a_setting(real_layout: Callable[[str], Path]) -> None:
    root = real_layout("chexpert")
    small = root / "CheXpert-v1.0-small"
    for name in ("train.csv", "valid.csv"):
        text = (small / name).read_text().replace("CheXpert-v1.0-small/", "CheXpert-v1.0/")
        (small / name).write_text(text)
    shutil.move(small, root / "CheXpert-v1.0")
    with pytest.raises(FileNotFoundError, match=r"CheXpert-v1\.0-small/train\.csv \(setting folder\)"):
        prepare("chexpert", "chexpert", root, {})
    frame, _, _ = prepare("chexpert", "chexpert", root, {"folder": "CheXpert-v1.0"})
    assert len(frame) == 13 and frame["id"].str.starts_with("CheXpert-v1.0/").all()


def test_uncertain_mappings_must_cover_each_class_with_a_known_policy() -> None:
    with pytest.raises(SettingsError, match=r"without a policy: \['Edema'\]"):
        uncertain_values({"Atelectasis": "ones"}, ("Atelectasis", "Edema"))
    with pytest.raises(SettingsError, match=r"unknown policies: \{'Edema': 'maybe'\}"):
        uncertain_values({"Atelectasis": "ones", "Edema": "maybe"}, ("Atelectasis", "Edema"))
    with pytest.raises(SettingsError, match="u_ones"):
        uncertain_values("u_ones", ("Edema",))
    assert np.isnan(uncertain_values("ignore", ("Edema",))).all()
