"""``adaptor check-data`` on the hand-written real-layout folders, and the config loading it uses."""

from pathlib import Path

import pytest
import yaml

from adaptor import cli, config
from adaptor.check import check_data

FIXTURES = Path(__file__).with_name("fixtures")
CONFIG = {
    "on_error": "skip",
    "datasets": {
        "mimic": {"reader": "mimic", "root": str(FIXTURES / "mimic-cxr-jpg")},
        "rsna": {"reader": "rsna", "root": str(FIXTURES / "rsna")},
        "covidx": {"reader": "covidx", "root": str(FIXTURES / "covidx")},
        "chexpert": {"reader": "chexpert", "root": str(FIXTURES / "chexpert")},
        "siim": {"reader": "siim", "root": str(FIXTURES / "siim")},
    },
    "encoders": {
        "image": {"e": {"kind": "timm", "model": "m"}},
        "text": {"t": {"kind": "transformers", "model": "t"}},
    },
    "embed": {"tokens": ["siim"]},
    "pretrain": {"dataset": "mimic", "image_encoders": ["e"], "text_encoders": ["t"]},
    "evaluate": {
        "classification": {"datasets": ["rsna", "covidx", "chexpert"]},
        "segmentation": {"datasets": ["siim"]},
        "zeroshot": {"prompts": {"chexpert": {"Edema": ["edema", "no edema"]}}},
    },
}


def _write(tmp_path: Path, settings: dict, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(settings))
    return path


def test_check_data_sets_each_folder_beside_its_release(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.main(["check-data", "--config", str(_write(tmp_path, CONFIG))])
    out = capsys.readouterr().out
    assert "release: MIMIC-CXR-JPG 2.0.0 (mimic-cxr-2.0.0-metadata.csv.gz) (published counts beside)" in out
    assert "  images                                  16       377,110" in out
    assert "  label rows                   11        30,227" in out  # RSNA stage 2
    assert "  train images              12       223,414" in out  # CheXpert-v1.0
    assert "rejected (error): 1 x image file is missing" in out
    assert "rejected (filtered): 1 x only an addendum or wet read, no findings or impression" in out
    assert "    pretrain        official    4 / 2 / 0" in out
    assert "    segmentation    mgca        35 / 9 / 9" in out  # straddling images in two splits
    assert "    segmentation    mgca_clean  30 / 7 / 9" in out
    assert "classification  mgca        MGCA's CheXpert train / validation split is not reproduced" in out
    assert "PROBLEM" not in out


def test_check_data_fails_naming_what_is_missing_or_would_stop_prepare(tmp_path: Path) -> None:
    broken = CONFIG | {"on_error": "fail"}
    broken["datasets"] = CONFIG["datasets"] | {
        "covidx": {"reader": "covidx", "root": str(FIXTURES / "covidx"), "version": "7A"}
    }
    checks = {check.name: check for check in check_data(config.load([_write(tmp_path, broken)]))}
    assert checks["covidx"].problems == [
        f"dataset 'covidx': missing {FIXTURES}/covidx/train_COVIDx7A.txt (setting train_list, version '7A'),"
        f" {FIXTURES}/covidx/test_COVIDx7A.txt (setting test_list, version '7A')"
    ]
    assert checks["mimic"].problems == [
        "4 bad samples: prepare stops (on_error: fail); fix them or set on_error: skip"
    ]
    assert not checks["rsna"].problems and checks["rsna"].splits
    with pytest.raises(SystemExit) as stopped:
        cli.main(["check-data", "--config", str(_write(tmp_path, broken)), "--datasets", "covidx", "rsna"])
    assert stopped.value.code == 1


def test_config_files_merge_in_order_with_the_schemas_defaults(tmp_path: Path) -> None:
    mgca = {"protocol": "mgca", "classification": {"datasets": ["rsna", "covidx"]}}  # no MGCA CheXpert split
    overlay = _write(tmp_path, {"pretrain": {"epochs": 3}, "evaluate": mgca}, "overlay.yaml")
    merged = config.load([_write(tmp_path, CONFIG), overlay])
    assert merged["pretrain"]["epochs"] == 3 and merged["pretrain"]["lr"] == 2e-5  # overlay, then default
    assert merged["pretrain"]["image_encoders"] == ["e"] and merged["evaluate"]["protocol"] == "mgca"
    bad = _write(tmp_path, {"pretrain": {"epochs": "ten"}}, "bad.yaml")
    with pytest.raises(config.ConfigError, match="ten"):
        config.load([_write(tmp_path, CONFIG), bad])
    with pytest.raises(config.ConfigError, match=r"nowhere\.yaml"):
        config.load([tmp_path / "nowhere.yaml"])
