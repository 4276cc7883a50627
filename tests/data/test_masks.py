"""Masks land under the image pixels they label, after the encoder's own resize, pad and crop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from adaptor.data.images import Preprocess
from adaptor.data.masks import masks_for, rasterise, read_masks, to_input_geometry, write_masks
from adaptor.data.siim import rle_decode


def test_boxes_and_run_lengths_are_filled_at_image_size() -> None:
    mask = rasterise(6, 8, None, [[1.0, 2.0, 3.0, 2.0]])
    expected = np.zeros((6, 8), dtype=bool)
    expected[2:4, 1:4] = True
    np.testing.assert_array_equal(mask, expected)
    rle = "9 2 3 2"  # column-major, relative starts: pixels 9-10 and 14-15 of a 4 x 4 image
    np.testing.assert_array_equal(rasterise(4, 4, [rle], None), rle_decode(rle, 4, 4))
    assert rasterise(4, 4, [rle], [[0, 0, 1, 1]]).sum() == 5


def test_mask_geometry_follows_the_image_geometry() -> None:
    """A bright rectangle in a non-square image and its mask stay aligned after preprocessing."""
    image = np.zeros((300, 200), dtype=np.uint8)
    image[40:120, 150:190] = 255
    mask = rasterise(300, 200, None, [[150, 40, 40, 80]])
    preprocess = Preprocess(resize=96, crop=80)
    bright = preprocess.geometry(image) > 127
    placed = to_input_geometry(mask, preprocess)
    assert placed.shape == (80, 80)
    assert (bright ^ placed).sum() <= 0.1 * placed.sum()  # only boundary pixels may differ


def test_masks_round_trip_in_the_asked_order_and_refuse_another_geometry(tmp_path: Path) -> None:
    paths = []
    for index in range(3):
        paths.append(tmp_path / f"{index}.png")
        Image.fromarray(np.zeros((64, 64), dtype=np.uint8)).save(paths[-1])
    manifest = pl.DataFrame(
        {
            "id": ["a", "b", "c"],
            "path": [str(p) for p in paths],
            "boxes": [[[0.0, 0.0, 32.0, 32.0]], [], None],
            "mask": [None, None, ["0 256"]],  # the first four columns
        }
    )
    preprocess = Preprocess(resize=32, crop=32)
    assert write_masks(manifest, preprocess, tmp_path / "masks.zarr") == 3
    masks = read_masks(tmp_path / "masks.zarr", ["c", "a", "b"], preprocess)
    assert masks.shape == (3, 32, 32)
    assert masks[1, :16, :16].all() and masks[1].sum() == 16 * 16
    assert not masks[2].any() and masks[0][:, :2].all() and masks[0].sum() == 32 * 2
    with pytest.raises(ValueError, match="preprocessing"):
        read_masks(tmp_path / "masks.zarr", ["a"], Preprocess(resize=40, crop=32))
    with pytest.raises(ValueError, match="no mask for 1 ids"):
        read_masks(tmp_path / "masks.zarr", ["z"], preprocess)


def test_a_split_that_holds_some_of_an_images_rows_sees_only_their_masks(tmp_path: Path) -> None:
    """MGCA splits SIIM by label-file row: a straddling image's mask in each split is the union of
    that split's rows alone."""
    path = tmp_path / "0.png"
    Image.fromarray(np.zeros((64, 64), dtype=np.uint8)).save(path)
    left, right = "0 128", "3968 128"  # the first two and the last two columns
    manifest = pl.DataFrame({"id": ["s"], "path": [str(path)], "mask": [[left, right]], "rows": [[7, 9]]})
    preprocess = Preprocess(resize=64, crop=64)
    write_masks(manifest, preprocess, tmp_path / "masks.zarr")
    whole = masks_for(tmp_path / "masks.zarr", manifest.with_columns(split_rows=pl.lit(None)), preprocess)
    only_last = masks_for(
        tmp_path / "masks.zarr", manifest.with_columns(split_rows=pl.lit([9], pl.List(pl.Int64))), preprocess
    )
    assert whole[0][:, :2].all() and whole[0][:, -2:].all() and whole[0].sum() == 4 * 64
    assert only_last[0][:, -2:].all() and only_last[0].sum() == 2 * 64
