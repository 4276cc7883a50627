"""Images that decode wrongly or lie outside the dataset: a faithful picture, or a counted reject."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from adaptor.data.images import read_grey
from adaptor.data.prepare import OUTSIDE_ROOT, prepare
from adaptor.errors import ManifestError


def test_a_16_bit_png_keeps_its_contrast(tmp_path: Path) -> None:
    ramp = np.linspace(0, 4095, 64 * 64).reshape(64, 64).astype(np.uint16)  # 12-bit data in 16 bits
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    grey = read_grey(tmp_path / "deep.png")
    assert grey.dtype == np.uint8 and (grey.min(), grey.max()) == (0, 255)
    assert (grey == 255).mean() < 0.01  # PIL's own conversion saturates 94 % of these pixels
    assert np.all(np.diff(grey.ravel().astype(int)) >= 0)  # the ramp stays a ramp


def test_an_8_bit_png_is_left_as_it_is(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "plain.png")
    assert np.array_equal(read_grey(tmp_path / "plain.png"), pixels)


def _rsna_with_ids(root: Path, ids: list[str]) -> None:
    lines = ["patientId,x,y,width,height,Target", *(f"{name},,,,,0" for name in ids)]
    (root / "stage_2_train_labels.csv").write_text("\n".join(lines) + "\n")


def test_image_paths_that_leave_the_dataset_root_are_counted_rejects(
    real_layout: Callable[[str], Path], tmp_path: Path
) -> None:
    root = real_layout("rsna")
    (tmp_path / "outside_root.dcm").write_bytes(b"")  # exists, but is not the dataset's
    inside = sorted(p.stem for p in (root / "stage_2_train_images").glob("*.dcm"))[:2]
    escapes = ["../../outside_root", "../../../../../../../../etc/passwd"]
    _rsna_with_ids(root, [*inside, *escapes])
    frame, _, rejects = prepare("rsna", "rsna", root, {}, on_error="skip")
    assert sorted(frame["id"]) == inside
    outside = rejects.filter(pl.col("reason") == OUTSIDE_ROOT)
    assert sorted(outside["sample_id"]) == sorted(escapes) and set(outside["kind"]) == {"error"}


def test_an_escaping_path_stops_prepare_under_on_error_fail(
    real_layout: Callable[[str], Path], tmp_path: Path
) -> None:
    root = real_layout("rsna")
    (tmp_path / "outside_root.dcm").write_bytes(b"")
    _rsna_with_ids(root, ["../../outside_root"])
    with pytest.raises(
        ManifestError,
        match=r"outside_root\.dcm \(id \.\./\.\./outside_root\): image path leaves the dataset root",
    ):
        prepare("rsna", "rsna", root, {}, on_error="fail")
