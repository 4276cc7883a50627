"""JPEG decoding and preprocessing on the encoder's device (TorchCodec's decoder: nvJPEG on a GPU,
libjpeg-turbo on the CPU).

Full-size radiographs (MIMIC-CXR-JPG: about 2,500 x 3,000 pixels) take longer to decode on a CPU
core than a GPU takes to encode them, so on a GPU the DataLoader workers only read the files' bytes
and the decode, resize, padding, crop and normalisation run on the device, batch by batch. The
steps are today's :class:`~adaptor.data.images.Preprocess` in torch: on the CPU they give the PIL
path's pixels but for float rounding in the resize's weights: at most 1 grey level of 255, in
under 0.1 % of the pixels when a radiograph is shrunk, up to 6 % when a small image is enlarged a
little (tests/data/test_device_images.py). PNG and DICOM files, and JPEGs that
are not 8-bit grey or RGB (CMYK), keep the PIL path in the workers.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.nn import functional
from torchcodec.decoders import decode_jpeg  # type: ignore[attr-defined]

from adaptor.data.images import Preprocess, read_grey
from adaptor.errors import ImageError

DECODES = ("auto", "cpu", "gpu")
JPEG_MAGIC = b"\xff\xd8\xff"
# PIL's convert("L") on RGB, in its fixed-point form (ITU-R 601-2 luma), so both paths agree.
LUMA = (19595, 38470, 7471)


def decode_on_device(decode: str, device: torch.device) -> bool:
    """Whether JPEGs are decoded where the encoder runs: ``gpu`` always (on the CPU when there is no
    GPU, which is how the tests check it), ``auto`` on a CUDA device, ``cpu`` never."""
    if decode not in DECODES:
        raise ValueError(f"embed.decode must be one of {DECODES}, got {decode!r}")
    return decode == "gpu" or (decode == "auto" and device.type == "cuda")


def read_jpeg(path: str | Path) -> torch.Tensor | None:
    """The file's bytes as a uint8 tensor if it is a JPEG (by its first bytes, whatever its name),
    else None."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError as error:
        raise ImageError(f"{path}: image file is missing") from error
    if not data.startswith(JPEG_MAGIC):
        return None
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def _grey(decoded: torch.Tensor) -> torch.Tensor | None:
    """[H, W] uint8 from a decoded [C, H, W]; None for channel counts PIL's path must handle."""
    if decoded.shape[0] == 1:
        return decoded[0]
    if decoded.shape[0] == 3:
        weights = torch.tensor(LUMA, dtype=torch.int32, device=decoded.device).view(3, 1, 1)
        return ((decoded.int() * weights).sum(0) + 0x8000).bitwise_right_shift(16).to(torch.uint8)
    return None


def _decoded(jpeg: torch.Tensor, device: torch.device) -> torch.Tensor:
    image = decode_jpeg(jpeg, mode="UNCHANGED", device=device)
    assert isinstance(image, torch.Tensor)  # one source gives one tensor
    return image


def decode_greys(
    jpegs: list[torch.Tensor], paths: list[str], device: torch.device
) -> list[torch.Tensor | str]:
    """Decode JPEG bytes on ``device`` to [H, W] uint8 grey images, as one batch; if the batch fails,
    one by one, so that a bad file becomes its own reason (a string naming it) and the others are
    kept. A JPEG that does not decode to grey or RGB (CMYK) goes through PIL on the CPU."""
    batch: list[torch.Tensor] | None
    try:
        batch = list(decode_jpeg(jpegs, mode="UNCHANGED", device=device))
    except RuntimeError:
        batch = None
    greys: list[torch.Tensor | str] = []
    for index, path in enumerate(paths):
        try:
            grey = _grey(_decoded(jpegs[index], device) if batch is None else batch[index])
            greys.append(grey if grey is not None else torch.from_numpy(read_grey(path).copy()).to(device))
        except RuntimeError as error:
            greys.append(f"{path}: cannot decode image (RuntimeError: {error})")
        except ImageError as error:
            greys.append(str(error))
    return greys


def _resized(grey: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """PIL's bilinear resize in torch: antialiased, one axis at a time (width first), rounded half
    up to grey levels after each pass as PIL's 8-bit passes are."""
    image = grey[None, None].float()
    for shape in ((grey.shape[0], size[1]), size):
        if tuple(image.shape[-2:]) != shape:
            image = functional.interpolate(
                image, size=shape, mode="bilinear", antialias=True, align_corners=False
            )
            image = (image + 0.5).floor().clamp(0, 255)
    return image[0, 0]


def geometry(grey: torch.Tensor, preprocess: Preprocess) -> torch.Tensor:
    """:meth:`Preprocess.geometry` in torch on the image's device: the longer side to ``resize``,
    zero-padded to a square, centre crop. Returns [crop, crop] floats in 0..1."""
    height, width = grey.shape
    scale = preprocess.resize / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    square = torch.zeros((preprocess.resize, preprocess.resize), device=grey.device)
    top, left = (preprocess.resize - size[0]) // 2, (preprocess.resize - size[1]) // 2
    square[top : top + size[0], left : left + size[1]] = _resized(grey, size)
    offset = (preprocess.resize - preprocess.crop) // 2
    return square[offset : offset + preprocess.crop, offset : offset + preprocess.crop] / 255
