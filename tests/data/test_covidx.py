"""COVIDx on a hand-written folder in its real layout (``tests/fixtures/covidx``): label lists
``patient filename class source`` with several images per patient (cohen, RICORD, ActMed), a
filename with parentheses, Windows line endings and a trailing blank line in the train list."""

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from adaptor.data.covidx import parse_line
from adaptor.data.prepare import prepare
from adaptor.errors import SettingsError


def test_no_patient_has_images_on_both_sides_of_the_strict_split(real_layout: Callable[[str], Path]) -> None:
    root = real_layout("covidx")
    frame, info, _ = prepare("covidx", "covidx", root, {})
    assert info.census == {"train rows": 46, "test rows": 7, "patients": 35}
    train_list = frame.filter(pl.col("split") != "test")
    images = train_list.group_by("patient").len()["len"]
    assert images.max() == 4 and (images > 1).sum() == 11  # cohen, RICORD, ActMed repeats
    sides = train_list.group_by("patient").agg(pl.col("split").n_unique())
    assert (sides["split"] == 1).all()
    val = frame.filter(pl.col("split") == "val")
    assert 0.1 < len(val) / len(train_list) < 0.3  # one fold of five
    assert set(val["labels"].list.first()) == {0.0, 1.0, 2.0}  # stratified: every class validated
    test = frame.filter(pl.col("split") == "test")
    assert len(test) == 7 and test["id"].str.starts_with("test/").all()  # the official test list
    assert "train/COVID-19(17).jpg" in set(frame["id"])


def test_line_formats() -> None:
    assert parse_line("19 covid-19-pneumonia-15-PA.jpg COVID-19 cohen") == (
        "19",
        "covid-19-pneumonia-15-PA.jpg",
        "COVID-19",
    )
    assert parse_line("19 covid-19-pneumonia-15-PA.jpg COVID-19") == (
        "19",
        "covid-19-pneumonia-15-PA.jpg",
        "COVID-19",
    )
    assert parse_line("7 a file name.png normal rsna") == ("7", "a file name.png", "normal")
    assert parse_line("7 a.png maybe rsna") is None


def test_a_binary_release_is_refused_naming_what_to_use(real_layout: Callable[[str], Path]) -> None:
    root = real_layout("covidx")
    for split in ("train", "test"):
        lines = (root / f"{split}_COVIDx9A.txt").read_text().splitlines()
        binary = [
            line.replace(" normal ", " negative ").replace(" COVID-19 ", " positive ") for line in lines
        ]
        (root / f"{split}_COVIDx9B.txt").write_text("\n".join(binary))
    with pytest.raises(SettingsError, match=r"COVIDx 9B: \d+ lines are labelled positive / negative"):
        prepare("covidx", "covidx", root, {"version": "9B"})


def test_label_list_names_and_image_folders_are_settings(real_layout: Callable[[str], Path]) -> None:
    root = real_layout("covidx")
    (root / "train_COVIDx9A.txt").rename(root / "train.txt")
    (root / "train").rename(root / "train_images")
    with pytest.raises(FileNotFoundError, match=r"train_COVIDx9A\.txt"):
        prepare("covidx", "covidx", root, {})
    frame, _, _ = prepare(
        "covidx", "covidx", root, {"train_list": "train.txt", "train_images": "train_images"}
    )
    assert len(frame) == 53


def test_a_repeated_line_is_rejected_naming_the_first(real_layout: Callable[[str], Path]) -> None:
    root = real_layout("covidx")
    with open(root / "test_COVIDx9A.txt", "a") as handle:
        handle.write("COVID-00099 COVID-00099.jpg COVID-19 actmed\n")
    _, _, rejects = prepare("covidx", "covidx", root, {}, on_error="skip")
    assert rejects.select("row", "reason").rows() == [(8, "repeats test_COVIDx9A.txt row 7")]
