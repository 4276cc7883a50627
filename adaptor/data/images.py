"""Image decoding (JPEG, PNG, DICOM) and the deterministic preprocessing every encoder input gets."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import torch
from PIL import Image
from pydicom.pixels.processing import apply_modality_lut, apply_voi_lut

from adaptor.errors import ImageError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NORMALISATIONS = ("imagenet", "minus_one_one", "xrv")


# PIL modes of 16-bit and 32-bit grey images (16-bit PNG and TIFF).
DEEP_MODES = ("I", "I;16", "I;16B", "I;16L", "F")


def _min_max_8bit(pixels: np.ndarray) -> np.ndarray:
    """Stretch the image's own value range to 0..255 (12-bit data stored in 16 bits stays visible)."""
    low, high = float(pixels.min()), float(pixels.max())
    return ((pixels - low) / max(high - low, 1e-6) * 255).round().astype(np.uint8)


def read_grey(path: str | Path) -> np.ndarray:
    """Decode an image to 8-bit grey.

    DICOM pixels go through the file's modality LUT (rescale slope / intercept) and VOI LUT or
    window, as a viewer shows them, before the min-max scaling to 8 bits; MONOCHROME1 is inverted
    so that bone is bright. 16-bit PNGs get the same min-max scaling; 8-bit images are kept as they
    are.
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".dcm":
            dataset = pydicom.dcmread(path)
            pixels = apply_modality_lut(dataset.pixel_array, dataset)
            pixels = apply_voi_lut(pixels, dataset).astype(np.float32)
            if dataset.get("PhotometricInterpretation", "MONOCHROME2") == "MONOCHROME1":
                pixels = pixels.max() - pixels
            return _min_max_8bit(pixels)
        with Image.open(path) as image:
            if image.mode in DEEP_MODES:  # PIL's convert("L") clips these at 255
                return _min_max_8bit(np.asarray(image, dtype=np.float32))
            return np.asarray(image.convert("L"))
    except FileNotFoundError as error:
        raise ImageError(f"{path}: image file is missing") from error
    except Exception as error:
        raise ImageError(f"{path}: cannot decode image ({type(error).__name__}: {error})") from error


@dataclass(frozen=True)
class Preprocess:
    """Resize the longer side, zero-pad to a square, centre-crop, normalise. No randomness."""

    resize: int = 256
    crop: int = 224
    normalize: str = "imagenet"
    channels: int = 3

    def __post_init__(self) -> None:
        if self.normalize not in NORMALISATIONS:
            raise ValueError(f"preprocess.normalize must be one of {NORMALISATIONS}, got {self.normalize!r}")
        if self.crop > self.resize:
            raise ValueError(f"preprocess.crop ({self.crop}) cannot exceed preprocess.resize ({self.resize})")

    def identity(self) -> dict[str, Any]:
        return asdict(self)

    def geometry(
        self, array: np.ndarray, resample: Image.Resampling = Image.Resampling.BILINEAR
    ) -> np.ndarray:
        """Longer side to ``resize``, zero-padded to a square, centre crop: shared by images and masks."""
        height, width = array.shape
        scale = self.resize / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        resized = np.asarray(Image.fromarray(array).resize(size, resample))
        square = np.zeros((self.resize, self.resize), dtype=array.dtype)
        top, left = (self.resize - resized.shape[0]) // 2, (self.resize - resized.shape[1]) // 2
        square[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
        offset = (self.resize - self.crop) // 2
        return square[offset : offset + self.crop, offset : offset + self.crop].copy()

    def __call__(self, grey: np.ndarray) -> torch.Tensor:
        return self.normalised(torch.from_numpy(self.geometry(grey)).float() / 255)

    def normalised(self, crop: torch.Tensor) -> torch.Tensor:
        """Grey crops in 0..1, [..., H, W] on any device, to the encoder's input [..., C, H, W]."""
        if self.normalize == "minus_one_one":
            crop = crop * 2 - 1
        elif self.normalize == "xrv":
            crop = (crop * 2 - 1) * 1024
        tensor = crop.unsqueeze(-3).expand(*crop.shape[:-2], self.channels, *crop.shape[-2:])
        if self.normalize == "imagenet":
            mean = torch.tensor(IMAGENET_MEAN[: self.channels], device=crop.device).view(-1, 1, 1)
            std = torch.tensor(IMAGENET_STD[: self.channels], device=crop.device).view(-1, 1, 1)
            tensor = (tensor - mean) / std
        return tensor.contiguous()
