"""Segmentation targets: SIIM run-length masks and RSNA boxes, in the geometry the encoder saw.

Masks are rasterised at the image's own size, then resized, padded and cropped exactly like the
image (:meth:`Preprocess.geometry`), so that mask pixel (i, j) lies under image pixel (i, j). They
are written once per (dataset, image geometry) and read by every segmentation job.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import polars as pl
import pydicom
import zarr
from PIL import Image

from adaptor.cache.store import attribute, member, read_rows, values
from adaptor.data.images import Preprocess
from adaptor.data.siim import rle_decode
from adaptor.errors import ImageError
from adaptor.progress import progress

log = logging.getLogger(__name__)
ROWS_PER_CHUNK = 64


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) from the file header alone: no pixel decoding."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".dcm":
            header = pydicom.dcmread(path, stop_before_pixels=True)
            return int(header.Rows), int(header.Columns)
        with Image.open(path) as image:
            return image.height, image.width
    except FileNotFoundError as error:
        raise ImageError(f"{path}: image file is missing") from error
    except Exception as error:
        raise ImageError(f"{path}: cannot read the image size ({type(error).__name__}: {error})") from error


def rasterise(height: int, width: int, rles: list[str] | None, boxes: list[list[float]] | None) -> np.ndarray:
    """The union of a sample's run-length masks and filled [x, y, w, h] boxes, at image size."""
    mask = np.zeros((height, width), dtype=bool)
    for rle in rles or []:
        mask |= rle_decode(rle, height, width)
    for x, y, w, h in boxes or []:
        top, left = max(0, int(np.floor(y))), max(0, int(np.floor(x)))
        mask[top : int(np.ceil(y + h)), left : int(np.ceil(x + w))] = True
    return mask


def to_input_geometry(mask: np.ndarray, preprocess: Preprocess) -> np.ndarray:
    """Resize, pad and crop a full-size mask like its image; bilinear, then threshold at one half."""
    resized = preprocess.geometry(mask.astype(np.float32), Image.Resampling.BILINEAR)
    return resized >= 0.5


def write_masks(manifest: pl.DataFrame, preprocess: Preprocess, path: str | Path) -> int:
    """Masks [N, crop, crop] for every manifest row whose image can be read; returns how many."""
    ids, masks = [], []
    for row in progress(manifest.iter_rows(named=True), len(manifest), "masks", "samples"):
        try:
            height, width = image_size(row["path"])
        except ImageError as error:  # rejected at embedding too, so no method ever sees this id
            log.warning("no mask for %s: %s", row["id"], error)
            continue
        full = rasterise(height, width, row.get("mask"), row.get("boxes"))
        ids.append(row["id"])
        masks.append(to_input_geometry(full, preprocess))
    stacked = np.stack(masks) if masks else np.zeros((0, preprocess.crop, preprocess.crop), dtype=bool)
    group = zarr.open_group(path, mode="w")
    group.create_array("ids", shape=(len(ids),), dtype=str, chunks=(max(len(ids), 1),))[:] = np.asarray(
        ids, dtype=str
    )
    group.create_array(
        "masks",
        shape=stacked.shape,
        dtype="bool",
        chunks=(ROWS_PER_CHUNK, *stacked.shape[1:]),
        compressors=zarr.codecs.ZstdCodec(level=3),
    )[:] = stacked
    group.attrs["preprocess"] = preprocess.identity()
    return len(ids)


def read_masks(path: str | Path, wanted: list[str], preprocess: Preprocess) -> np.ndarray:
    """Masks of ``wanted`` ids in that order; refuses masks made for another image geometry."""
    group = zarr.open_group(path, mode="r")
    made_for = dict(attribute(group, "preprocess"))
    if made_for != preprocess.identity():
        raise ValueError(f"{path}: masks made for preprocessing {made_for}, expected {preprocess.identity()}")
    position = {sample: row for row, sample in enumerate(values(group, "ids").tolist())}
    missing = [sample for sample in wanted if sample not in position]
    if missing:
        raise ValueError(f"{path}: no mask for {len(missing)} ids, e.g. {missing[:3]}")
    return read_rows(
        member(group, "masks"), np.asarray([position[sample] for sample in wanted], dtype=np.int64)
    )


def masks_for(path: str | Path, frame: pl.DataFrame, preprocess: Preprocess) -> np.ndarray:
    """Masks of ``frame``'s samples in order. A sample whose ``split_rows`` names only some of its
    label-file lines (a SIIM image straddling MGCA's row split, under ``protocol: mgca``) gets the
    mask of those lines alone, as MGCA's loaders build it from that split's rows."""
    masks = read_masks(path, frame["id"].to_list(), preprocess)
    if "split_rows" not in frame.columns:
        return masks
    partial = frame.with_row_index("position").filter(pl.col("split_rows").is_not_null())
    for row in partial.iter_rows(named=True):
        keep = set(row["split_rows"])
        rles = [rle for rle, line in zip(row["mask"] or [], row["rows"], strict=True) if line in keep]
        height, width = image_size(row["path"])
        masks[row["position"]] = to_input_geometry(rasterise(height, width, rles, None), preprocess)
    return masks
