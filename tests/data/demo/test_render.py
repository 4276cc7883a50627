"""The generator's pixels show the findings its labels name, and nothing else changes."""

import numpy as np
import pytest
from scipy import ndimage

from adaptor.data.demo.render import LOCALISED, Finding, render

SIZE = 128


@pytest.mark.parametrize("kind", LOCALISED)
def test_localised_findings_change_pixels_only_inside_their_region(kind: str) -> None:
    finding = Finding(kind, side="left" if kind not in ("device",) else "bilateral", zone="lower")
    for seed in range(3):
        normal = render([], seed=seed, size=SIZE).pixels.astype(int)
        abnormal = render([finding], seed=seed, size=SIZE)
        region = abnormal.mask(kind)
        assert region.any(), f"{kind}: no region drawn"
        difference = np.abs(abnormal.pixels.astype(int) - normal)
        near = ndimage.binary_dilation(region, iterations=4)
        assert difference[~near].max() <= 1, f"{kind}: pixels changed outside the region"
        assert difference[region].mean() > 10, f"{kind}: region not visible"


def test_patient_left_is_on_the_image_right() -> None:
    image = render([Finding("opacity", side="left", zone="middle")], seed=1, size=SIZE)
    columns = np.flatnonzero(image.mask("opacity").any(axis=0))
    assert columns.min() > SIZE // 2


def test_opacity_box_matches_its_mask() -> None:
    image = render([Finding("opacity", side="right", zone="lower")], seed=2, size=SIZE)
    region = image.regions[0]
    x, y, width, height = region.box()
    assert region.mask[y : y + height, x : x + width].sum() == region.mask.sum()
    assert region.mask[y, x : x + width].any() and region.mask[y + height - 1, x : x + width].any()


def test_cardiomegaly_enlarges_the_heart_shadow() -> None:
    bright = [
        (render(f, seed=s, size=SIZE).pixels > 170).sum()
        for s in range(4)
        for f in ([], [Finding("cardiomegaly")])
    ]
    assert all(big > normal * 1.3 for normal, big in zip(bright[::2], bright[1::2], strict=True))


def test_rendering_is_deterministic() -> None:
    findings = [Finding("nodule", "right", "upper", count=2), Finding("effusion", "left")]
    assert np.array_equal(
        render(findings, seed=7, size=SIZE).pixels, render(findings, seed=7, size=SIZE).pixels
    )
    assert not np.array_equal(
        render(findings, seed=7, size=SIZE).pixels, render(findings, seed=8, size=SIZE).pixels
    )


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown finding kind"):
        Finding("fracture")
