from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from adaptor.data.demo.writers import write_dicom
from adaptor.data.images import Preprocess, read_grey
from adaptor.errors import ImageError


def test_monochrome1_dicom_is_inverted_back(tmp_path: Path) -> None:
    pixels = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (64, 1))
    write_dicom(tmp_path / "a.dcm", pixels, "a", seed=0, monochrome1=True)
    write_dicom(tmp_path / "b.dcm", pixels, "b", seed=0)
    assert np.array_equal(read_grey(tmp_path / "a.dcm"), read_grey(tmp_path / "b.dcm"))
    assert read_grey(tmp_path / "b.dcm")[0, -1] > read_grey(tmp_path / "b.dcm")[0, 0]


def _windowed_dicom(path: Path, stored: np.ndarray) -> None:
    """12-bit CR pixels with a rescale (slope 2, intercept -1024) and a window (centre 1000, width
    1000), as scanners write them."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = meta_uid = generate_uid(entropy_srcs=["window"])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta, ds.SOPClassUID, ds.SOPInstanceUID = meta, SecondaryCaptureImageStorage, meta_uid
    ds.Modality, ds.PhotometricInterpretation, ds.SamplesPerPixel = "CR", "MONOCHROME2", 1
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = 2, -1024, "US"
    ds.WindowCenter, ds.WindowWidth = 1000, 1000
    ds.PixelData = stored.astype(np.uint16).tobytes()
    pydicom.dcmwrite(path, ds, enforce_file_format=True)


def test_dicom_pixels_go_through_the_modality_and_voi_luts(tmp_path: Path) -> None:
    stored = np.tile(np.arange(0, 4096, 16, dtype=np.uint16), (4, 1))  # a ramp over the 12 bits
    _windowed_dicom(tmp_path / "w.dcm", stored)
    grey = read_grey(tmp_path / "w.dcm")[0].astype(int)
    value = 2 * stored[0].astype(int) - 1024  # the modality LUT
    assert (grey[value < 490] == 0).all() and (grey[value > 1510] == 255).all()  # outside the window
    centre = int(np.argmin(np.abs(value - 1000)))
    assert abs(grey[centre] - 128) <= 3  # the window's centre is mid-grey
    inside = (value > 520) & (value < 1480)
    assert (np.diff(grey[inside]) > 0).all()  # the window spreads over the whole grey range


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
