"""Decoding and preprocessing on the encoder's device, run here on the CPU: the PIL path's pixels but
for a grey level in a few of them, bad files named one by one, non-JPEGs left to PIL."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from adaptor.data.device_images import decode_greys, decode_on_device, geometry, read_jpeg
from adaptor.data.images import Preprocess, read_grey
from adaptor.errors import ImageError

CPU = torch.device("cpu")


def _radiograph(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth structure plus noise, like a radiograph's texture (pure noise is not what JPEG sees)."""
    rows, columns = np.mgrid[0:height, 0:width]
    noise = np.random.default_rng(seed).normal(0, 20, (height, width))
    return (128 + 60 * np.sin(columns / 37) * np.cos(rows / 53) + noise).clip(0, 255).astype(np.uint8)


def _jpeg(path: Path, pixels: np.ndarray, mode: str = "L") -> str:
    Image.fromarray(pixels).convert(mode).save(path, "JPEG", quality=95)
    return str(path)


def _on_device(path: str, preprocess: Preprocess) -> torch.Tensor:
    data = read_jpeg(path)
    assert data is not None
    (grey,) = decode_greys([data], [path], CPU)
    assert isinstance(grey, torch.Tensor)
    return preprocess.normalised(geometry(grey, preprocess))


@pytest.mark.parametrize(
    ("height", "width", "mode"),
    [(3000, 2500, "L"), (2500, 3000, "L"), (301, 517, "RGB"), (60, 45, "L")],  # full size, odd, upsampled
)
@pytest.mark.parametrize("preprocess", [Preprocess(256, 224), Preprocess(72, 64, "minus_one_one")])
def test_device_path_gives_the_pil_paths_pixels_within_one_grey_level(
    tmp_path: Path, height: int, width: int, mode: str, preprocess: Preprocess
) -> None:
    path = _jpeg(tmp_path / "x.jpg", _radiograph(height, width), mode)
    ours, theirs = _on_device(path, preprocess), preprocess(read_grey(path))
    assert ours.shape == theirs.shape == (3, preprocess.crop, preprocess.crop)
    # One grey level, through the normalisation's scale (imagenet: 1 / (255 * 0.225); [-1, 1]: 2 / 255).
    level = 1 / (255 * min(0.229, 0.224, 0.225)) if preprocess.normalize == "imagenet" else 2 / 255
    difference = (ours - theirs).abs()
    assert difference.max() <= level * 1.001
    # The resize weights' float rounding: in a few pixels when shrinking a radiograph (the real case),
    # in up to 6 % when enlarging a small image by a little.
    enlarged = max(height, width) < preprocess.resize
    assert (difference > 1e-6).float().mean() < (0.06 if enlarged else 0.001)


def test_grey_and_rgb_jpegs_decode_to_pils_grey_exactly(tmp_path: Path) -> None:
    pixels = np.stack([_radiograph(90, 70, seed) for seed in range(3)], axis=-1)
    for mode in ("L", "RGB"):
        path = _jpeg(tmp_path / f"{mode}.jpg", pixels if mode == "RGB" else pixels[..., 0], mode)
        (grey,) = decode_greys([read_jpeg(path)], [path], CPU)  # type: ignore[list-item]
        np.testing.assert_array_equal(np.asarray(grey), read_grey(path), err_msg=mode)


def test_a_bad_jpeg_in_a_batch_is_its_own_reason_and_the_others_decode(tmp_path: Path) -> None:
    paths = [_jpeg(tmp_path / f"{i}.jpg", _radiograph(50, 40, i)) for i in range(3)]
    whole = Path(paths[1]).read_bytes()
    Path(paths[1]).write_bytes(whole[: len(whole) // 3])
    cmyk = _jpeg(tmp_path / "cmyk.jpg", np.stack([_radiograph(50, 40)] * 3, axis=-1), "CMYK")
    datas = [read_jpeg(path) for path in [*paths, cmyk]]
    greys = decode_greys(datas, [*paths, cmyk], CPU)  # type: ignore[arg-type]
    assert isinstance(greys[1], str) and paths[1] in greys[1] and "cannot decode" in greys[1]
    for index in (0, 2):
        np.testing.assert_array_equal(np.asarray(greys[index]), read_grey(paths[index]))
    np.testing.assert_array_equal(np.asarray(greys[3]), read_grey(cmyk))  # through PIL


def test_only_jpeg_bytes_go_to_the_device_whatever_the_files_name(tmp_path: Path) -> None:
    png, disguised = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(_radiograph(20, 20)).save(png)
    _jpeg(disguised, _radiograph(20, 20))
    assert read_jpeg(png) is None and read_jpeg(disguised) is not None
    with pytest.raises(ImageError, match=r"absent\.jpg: image file is missing"):
        read_jpeg(tmp_path / "absent.jpg")


def test_decode_setting_chooses_where_jpegs_decode() -> None:
    assert not decode_on_device("auto", CPU) and decode_on_device("auto", torch.device("cuda"))
    assert decode_on_device("gpu", CPU) and not decode_on_device("cpu", torch.device("cuda"))
    with pytest.raises(ValueError, match=r"embed\.decode must be one of"):
        decode_on_device("nvjpeg", CPU)
