"""MIMIC-CXR-JPG on a hand-written folder in its real layout (``tests/fixtures/mimic-cxr-jpg``).

The folder holds eleven studies whose reports are each one variant real reports have (see the
fixture's files): upper-case sections, mixed-case headers with spaces before the colon,
misspelled headers, no headers, only an addendum, a WET READ section, non-UTF-8 bytes, FINDINGS AND
IMPRESSION with Windows line endings, a report title, a missing report file and a report too short;
views PA, AP, LATERAL, LL and blank; an image missing from the split table and one missing on disk.
"""

import zipfile
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from adaptor.data.prepare import prepare
from adaptor.errors import ManifestError

KEPT = {
    "0a1b2c3d-11111111-22222222-33333333-44444444": "no acute cardiopulmonary process the lungs are clear",
    "1f2e3d4c-aaaaaaaa-bbbbbbbb-cccccccc-dddddddd": "new moderate left pleural effusion mild pulmonary",
    "2b3c4d5e-12345678-9abcdef0-12345678-9abcdef0": "right lower lobe pneumonia right lower lobe opacity",
    "3c4d5e6f-00000000-11111111-22222222-33333333": "appropriately positioned right ij catheter no",
    "6f708192-cafebabe-cafebabe-cafebabe-cafebabe": "left lower lobe pneumonia patchy opacity in the",
    "8192a3b4-feedface-feedface-feedface-feedface": "endotracheal tube terminates 4 cm above the carina",
}
REJECTED = {
    "4d5e6f70-abcdef01-23456789-abcdef01-23456789": ("filtered", "no findings or impression section"),
    "5e6f7081-deadbeef-deadbeef-deadbeef-deadbeef": (
        "filtered",
        "only an addendum or wet read, no findings or impression",
    ),
    "708192a3-0badf00d-0badf00d-0badf00d-0badf00d": (
        "error",
        "report is not valid UTF-8 (invalid continuation byte at byte 65)",
    ),
    "a3b4c5d6-10101010-20202020-30303030-40404040": ("error", "report file is missing"),
    "b4c5d6e7-99999999-88888888-77777777-66666666": ("filtered", "fewer than 3 tokens after cleaning"),
    "92a3b4c5-01010101-02020202-03030303-04040404": ("error", "image file is missing"),
    "c5d6e7f8-13579bdf-2468ace0-13579bdf-2468ace0": ("error", "no known split (None)"),
}


def test_every_report_variant_is_kept_or_rejected_with_its_reason(
    real_layout: Callable[[str], Path],
) -> None:
    root = real_layout("mimic-cxr-jpg")
    frame, info, rejects = prepare("mimic", "mimic", root, {}, on_error="skip")
    texts = dict(frame.select("id", "text").iter_rows())
    assert set(texts) == set(KEPT)
    for sample, start in KEPT.items():
        assert texts[sample].startswith(start)
    assert "subtle" not in texts["6f708192-cafebabe-cafebabe-cafebabe-cafebabe"]  # the WET READ's words
    found = {row["sample_id"]: (row["kind"], row["reason"]) for row in rejects.iter_rows(named=True)}
    assert found == REJECTED
    missing_report = rejects.filter(pl.col("reason") == "report file is missing")["source"][0]
    assert missing_report == str(root / "files/p11/p11000010/s50000010.txt")
    # validate and test are both validation for pre-training; laterals (LATERAL, LL, blank) are not read
    assert (
        dict(frame.select("id", "split").iter_rows())["2b3c4d5e-12345678-9abcdef0-12345678-9abcdef0"] == "val"
    )
    assert info.census == {
        "images": 16,
        "studies": 12,
        "patients": 11,
        "frontal images": 13,
        "studies with a usable report": 7,
    }


def test_the_first_bad_sample_stops_prepare_naming_its_file(real_layout: Callable[[str], Path]) -> None:
    with pytest.raises(ManifestError, match=r"4 bad sample\(s\); first: .*mimic-cxr-2.0.0-split.csv.gz"):
        prepare("mimic", "mimic", real_layout("mimic-cxr-jpg"), {})


def test_last_paragraph_fallback_keeps_a_report_without_sections(real_layout: Callable[[str], Path]) -> None:
    frame, _, rejects = prepare(
        "mimic", "mimic", real_layout("mimic-cxr-jpg"), {"fallback": "last_paragraph"}, on_error="skip"
    )
    texts = dict(frame.select("id", "text").iter_rows())
    assert texts["4d5e6f70-abcdef01-23456789-abcdef01-23456789"] == (
        "pa and lateral views of the chest were obtained stable mild cardiomegaly no focal consolidation"
        " or pulmonary edema"
    )
    assert "only an addendum or wet read, no findings or impression" in set(rejects["reason"])


def test_reports_read_from_the_zip_as_distributed_equal_the_unpacked_folder(
    real_layout: Callable[[str], Path],
) -> None:
    root = real_layout("mimic-cxr-jpg")
    unpacked, _, _ = prepare("mimic", "mimic", root, {}, on_error="skip")
    with zipfile.ZipFile(root / "mimic-cxr-reports.zip", "w") as archive:
        for report in sorted((root / "files").rglob("*.txt")):
            archive.write(report, f"mimic-cxr-reports/{report.relative_to(root)}")
            report.unlink()
    zipped, _, rejects = prepare(
        "mimic", "mimic", root, {"reports": "mimic-cxr-reports.zip"}, on_error="skip"
    )
    assert zipped.equals(unpacked)
    assert "report file is missing" in set(rejects["reason"])


def test_reports_are_read_in_parallel_processes_with_the_same_result(
    real_layout: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from adaptor.data import mimic

    root = real_layout("mimic-cxr-jpg")
    serial, _, serial_rejects = prepare("mimic", "mimic", root, {}, on_error="skip")
    monkeypatch.setattr(mimic, "CHUNK", 3)  # four chunks over two worker processes
    parallel, _, parallel_rejects = prepare("mimic", "mimic", root, {}, on_error="skip", workers=2)
    assert parallel.equals(serial) and parallel_rejects.equals(serial_rejects)
