from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adaptor.data.demo.writers import write_dicom
from adaptor.data.images import ImageError, Preprocess, read_grey


def test_monochrome1_dicom_is_inverted_back(tmp_path: Path) -> None:
    pixels = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (64, 1))
    write_dicom(tmp_path / "a.dcm", pixels, "a", seed=0, monochrome1=True)
    write_dicom(tmp_path / "b.dcm", pixels, "b", seed=0)
    assert np.array_equal(read_grey(tmp_path / "a.dcm"), read_grey(tmp_path / "b.dcm"))
    assert read_grey(tmp_path / "b.dcm")[0, -1] > read_grey(tmp_path / "b.dcm")[0, 0]


def test_corrupt_and_missing_images_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    Image.fromarray(np.zeros((32, 32), dtype=np.uint8)).save(broken)
    broken.write_bytes(broken.read_bytes()[:40])
    with pytest.raises(ImageError, match=r"broken\.jpg"):
        read_grey(broken)
    with pytest.raises(ImageError, match="missing"):
        read_grey(tmp_path / "absent.png")


def test_preprocess_pads_to_square_and_centre_crops() -> None:
    wide = np.full((50, 100), 255, dtype=np.uint8)
    tensor = Preprocess(resize=64, crop=48, normalize="minus_one_one", channels=1)(wide)
    assert tensor.shape == (1, 48, 48)
    assert tensor[0, 0, 0] == -1.0  # zero padding above the image
    assert tensor[0, 24, 24] == 1.0
    again = Preprocess(resize=64, crop=48, normalize="minus_one_one", channels=1)(wide)
    assert (tensor == again).all()


def test_imagenet_normalisation_gives_three_channels() -> None:
    tensor = Preprocess(resize=32, crop=32)(np.zeros((32, 32), dtype=np.uint8))
    assert tensor.shape == (3, 32, 32)
    assert tensor[0, 0, 0].item() == pytest.approx(-0.485 / 0.229, rel=1e-5)


def test_bad_preprocessing_is_refused() -> None:
    with pytest.raises(ValueError, match="crop"):
        Preprocess(resize=100, crop=200)
