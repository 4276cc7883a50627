"""What each supported dataset release looks like: its file names, each reader's defaults, and the
counts its publishers state.

The one place that knows these. Readers take their settings through :func:`settings_for`; the
``prepare`` rule declares :func:`label_files` as its inputs (so ``snakemake -n`` names a missing
one before anything runs, and an edited label file reruns ``prepare``); ``check-data`` compares a
folder with :data:`PUBLISHED`. Standard library only: the Snakefile imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adaptor.errors import SettingsError

CHEXPERT_COMPETITION = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
# The classes each reader labels (CheXpert's are its ``classes`` setting); MIMIC is pairs only.
CLASSES: dict[str, tuple[str, ...]] = {
    "mimic": (),
    "covidx": ("normal", "pneumonia", "COVID-19"),
    "rsna": ("Pneumonia",),
    "siim": ("Pneumothorax",),
}

# Each reader's settings and their defaults; a dataset's config entry overrides any of them.
DEFAULTS: dict[str, dict[str, Any]] = {
    "mimic": {
        "metadata": "mimic-cxr-2.0.0-metadata.csv.gz",
        "split_file": "mimic-cxr-2.0.0-split.csv.gz",
        "images": "files",
        "reports": "files",  # the folder mimic-cxr-reports.zip unpacks to, or the .zip itself
        "fallback": "reject",
    },
    "chexpert": {
        "folder": "CheXpert-v1.0-small",  # CheXpert-v1.0 for the full-size release
        "classes": list(CHEXPERT_COMPETITION),
        "uncertain": "zeros",
        "val_fraction": 0.15,
    },
    "covidx": {
        "version": "9A",
        "train_list": "train_COVIDx{version}.txt",
        "test_list": "test_COVIDx{version}.txt",
        "train_images": "train",
        "test_images": "test",
        "val_fraction": 0.2,
    },
    "rsna": {
        "labels": "stage_2_train_labels.csv",
        "images": "stage_2_train_images",
        "split": [0.7, 0.15, 0.15],
    },
    "siim": {"labels": "train-rle.csv", "images": "dicom-images-train", "split": [0.7, 0.15, 0.15]},
}
# Config keys that are not reader settings.
WORKFLOW_KEYS = frozenset({"reader", "root", "demo"})

# Each reader's release, named from its settings, and the counts its publishers state for it.
RELEASES = {
    "mimic": "MIMIC-CXR-JPG 2.0.0 ({metadata})",
    "chexpert": "{folder}",
    "covidx": "COVIDx {version} ({train_list}, {test_list})",
    "rsna": "RSNA Pneumonia Detection Challenge ({labels})",
    "siim": "SIIM-ACR Pneumothorax Segmentation ({labels})",
}
_CHEXPERT_V1 = {"train images": 223_414, "valid images": 234}
PUBLISHED: dict[str, dict[str, int]] = {
    "MIMIC-CXR-JPG 2.0.0 (mimic-cxr-2.0.0-metadata.csv.gz)": {
        "images": 377_110,
        "studies": 227_827,
        "patients": 65_379,
    },
    "CheXpert-v1.0-small": _CHEXPERT_V1,
    "CheXpert-v1.0": _CHEXPERT_V1,
    "RSNA Pneumonia Detection Challenge (stage_2_train_labels.csv)": {
        "label rows": 30_227,
        "patients": 26_684,
    },
}


def settings_for(reader: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The reader's defaults overridden by the dataset's config entry (workflow keys dropped)."""
    if reader not in DEFAULTS:
        raise SettingsError(f"unknown reader {reader!r}; one of {sorted(DEFAULTS)}")
    given = {key: value for key, value in settings.items() if key not in WORKFLOW_KEYS}
    unknown = sorted(set(given) - set(DEFAULTS[reader]))
    if unknown:
        raise SettingsError(
            f"reader {reader!r} has no setting(s) {unknown}; its settings are {sorted(DEFAULTS[reader])}"
        )
    merged = DEFAULTS[reader] | given
    if reader == "covidx":
        for key in ("train_list", "test_list"):
            merged[key] = str(merged[key]).format(version=merged["version"])
    if "split" in merged:
        shares = merged["split"]
        if len(shares) != 3 or min(shares) <= 0 or abs(sum(shares) - 1) > 1e-6:
            raise SettingsError(
                f"split {shares}: give three train / val / test shares, each above 0, that sum to 1"
            )
    return merged


def classes(reader: str, settings: Mapping[str, Any]) -> tuple[str, ...]:
    """The classes a dataset is labelled with, as its manifest will name them."""
    if reader == "chexpert":
        return tuple(settings_for(reader, settings)["classes"])
    return CLASSES[reader]


def label_files(reader: str, root: str | Path, settings: Mapping[str, Any]) -> dict[str, Path]:
    """The files a reader cannot work without (label lists, metadata, the reports), by the setting
    that names each (CheXpert: its two CSVs in the ``folder``)."""
    root, chosen = Path(root), settings_for(reader, settings)
    if reader == "chexpert":
        folder = root / str(chosen["folder"])
        return {"train": folder / "train.csv", "valid": folder / "valid.csv"}
    keys = {"mimic": ("metadata", "split_file", "reports"), "covidx": ("train_list", "test_list")}
    return {key: root / str(chosen[key]) for key in keys.get(reader, ("labels",))}


def missing_label_files(reader: str, root: str | Path, settings: Mapping[str, Any]) -> list[str]:
    """Which required files are absent, each with the setting that names it."""
    version = f", version {settings_for(reader, settings)['version']!r}" if reader == "covidx" else ""
    return [
        f"{path} (setting {'folder' if reader == 'chexpert' else key}{version})"
        for key, path in label_files(reader, root, settings).items()
        if not path.exists()
    ]


def release(reader: str, settings: Mapping[str, Any]) -> str:
    """The release a dataset's settings name (the key of :data:`PUBLISHED`)."""
    return RELEASES[reader].format(**settings_for(reader, settings))
