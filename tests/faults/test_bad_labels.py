"""Label files with a column missing or misnamed: ``prepare`` stops and names the file and the column,
never a class of all negatives or an empty dataset with exit 0."""

import csv
from collections.abc import Callable
from pathlib import Path

import pytest

from adaptor.data.prepare import prepare
from adaptor.errors import ManifestError

CHEXPERT_TRAIN = Path("CheXpert-v1.0-small") / "train.csv"


def _drop_column(path: Path, column: str) -> None:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, [name for name in rows[0] if name != column])
        writer.writeheader()
        writer.writerows({k: v for k, v in row.items() if k != column} for row in rows)


@pytest.mark.parametrize("typo", ["Pleural_Effusion", "pleural effusion", "Edemaa"])
def test_a_chexpert_class_that_is_not_a_column_stops_prepare(
    real_layout: Callable[[str], Path], typo: str
) -> None:
    root = real_layout("chexpert")
    with pytest.raises(ManifestError, match=rf"train.csv: no column\(s\) \['{typo}'\]"):
        prepare("chexpert", "chexpert", root, {"classes": ["Edema", typo]})


def test_a_chexpert_csv_without_frontal_lateral_stops_prepare(real_layout: Callable[[str], Path]) -> None:
    root = real_layout("chexpert")
    _drop_column(root / CHEXPERT_TRAIN, "Frontal/Lateral")
    with pytest.raises(ManifestError, match=r"train.csv: no column\(s\) \['Frontal/Lateral'\]"):
        prepare("chexpert", "chexpert", root, {})


@pytest.mark.parametrize("column", ["Target", "width"])
def test_an_rsna_csv_without_a_label_column_stops_prepare(
    real_layout: Callable[[str], Path], column: str
) -> None:
    root = real_layout("rsna")
    _drop_column(root / "stage_2_train_labels.csv", column)
    with pytest.raises(ManifestError, match=rf"stage_2_train_labels.csv: no column\(s\) \['{column}'\]"):
        prepare("rsna", "rsna", root, {})
