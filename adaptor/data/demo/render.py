"""A synthetic chest radiograph generator whose pixels show exactly the findings it is given.

The thorax (body, lungs, mediastinum, heart, ribs, diaphragm, noise) is drawn from ``seed`` alone,
and every finding is drawn from its own stream, so rendering the same seed with and without a
finding changes the pixels only where that finding's region is. Tests rely on that twin property to
check that labels, boxes and masks match the pixels.

Conventions: images are viewed as a PA radiograph, so the patient's right lung is on the image's
left; brighter means denser.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy import ndimage

KINDS = (
    "opacity",
    "nodule",
    "mass",
    "atelectasis",
    "effusion",
    "pneumothorax",
    "device",
    "cardiomegaly",
    "edema",
    "hyperinflation",
    "hypoinflation",
)
# Kinds with a pixel region that can be outlined (box or mask); the rest change the anatomy.
LOCALISED = ("opacity", "nodule", "mass", "atelectasis", "effusion", "pneumothorax", "device")
SIDES = ("left", "right", "bilateral")
ZONES = ("upper", "middle", "lower", "any")


@dataclass(frozen=True)
class Finding:
    """One finding to draw. ``side`` is the patient's side; ``count`` repeats focal findings."""

    kind: str
    side: str = "bilateral"
    zone: str = "any"
    severity: float = 1.0
    count: int = 1
    pattern: str = "focal"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown finding kind {self.kind!r}; expected one of {KINDS}")
        if self.side not in SIDES or self.zone not in ZONES:
            raise ValueError(f"bad side/zone in {self}")


@dataclass
class Region:
    """The pixels one finding changed, as a boolean mask at the image's resolution."""

    kind: str
    mask: np.ndarray

    def box(self) -> tuple[int, int, int, int]:
        """Bounding box as (x, y, width, height) in pixels, the RSNA convention."""
        rows = np.flatnonzero(self.mask.any(axis=1))
        cols = np.flatnonzero(self.mask.any(axis=0))
        return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


@dataclass
class Radiograph:
    """A rendered image (uint8, H x W) with the regions of its localised findings."""

    pixels: np.ndarray
    regions: list[Region] = field(default_factory=list)

    def mask(self, *kinds: str) -> np.ndarray:
        """Union of the regions of the given kinds (all kinds when none are given)."""
        union = np.zeros(self.pixels.shape, dtype=bool)
        for region in self.regions:
            if not kinds or region.kind in kinds:
                union |= region.mask
        return union


@dataclass(frozen=True)
class _Lung:
    cx: float
    cy: float
    rx: float
    ry: float
    dome: float
    image_side: int  # -1 for the image's left half (patient's right lung), +1 for the right half


@dataclass(frozen=True)
class _Anatomy:
    lungs: tuple[_Lung, _Lung]
    heart: tuple[float, float, float, float]  # cx, cy, rx, ry
    body: tuple[float, float]  # rx, ry
    tissue: float
    lung_density: float
    rib_phase: float
    rib_spacing: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> _Anatomy:
        shift = rng.normal(0.0, 0.012, size=2)
        width, height = rng.uniform(0.15, 0.18), rng.uniform(0.27, 0.31)
        lungs = tuple(
            _Lung(
                cx=0.5 + side * rng.uniform(0.175, 0.195) + shift[0],
                cy=0.44 + shift[1],
                rx=width * rng.uniform(0.96, 1.04),
                ry=height,
                dome=0.44 + shift[1] + height * rng.uniform(0.72, 0.8),
                image_side=side,
            )
            for side in (-1, 1)
        )
        heart = (0.53 + shift[0], 0.58 + shift[1], rng.uniform(0.12, 0.135), rng.uniform(0.1, 0.115))
        return cls(
            lungs=lungs,  # type: ignore[arg-type]
            heart=heart,
            body=(rng.uniform(0.44, 0.48), rng.uniform(0.55, 0.6)),
            tissue=rng.uniform(0.5, 0.58),
            lung_density=rng.uniform(0.16, 0.22),
            rib_phase=rng.uniform(0.0, 1.0),
            rib_spacing=rng.uniform(0.065, 0.075),
        )


def _texture(rng: np.random.Generator, size: int, coarse: int = 24) -> np.ndarray:
    """Smooth noise in [0, 1]: lung markings and patchiness."""
    small = rng.random((coarse, coarse)).astype(np.float32)
    return np.asarray(ndimage.zoom(small, size / coarse, order=1, grid_mode=True, mode="reflect"))


def _soft(distance: np.ndarray, width: float) -> np.ndarray:
    """A linear ramp from 1 (inside, distance < -2 width) to 0 (outside, distance > 2 width)."""
    ramp = distance / (4 * width)
    np.subtract(0.5, ramp, out=ramp)
    return np.clip(ramp, 0.0, 1.0, out=ramp)


class _Canvas:
    """Grids and the anatomy's masks, shared by the finding painters."""

    def __init__(self, anatomy: _Anatomy, size: int) -> None:
        self.size = size
        axis = ((np.arange(size) + 0.5) / size).astype(np.float32)
        self.y, self.x = np.meshgrid(axis, axis, indexing="ij")
        self.anatomy = anatomy
        self.edge = 1.5 / size
        self._lungs: dict[_Lung, np.ndarray] = {}
        self._ellipses: dict[tuple[float, float, float, float], np.ndarray] = {}

    def ellipse_distance(self, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
        """sqrt(((x - cx) / rx)^2 + ((y - cy) / ry)^2) - 1, computed in place and kept per ellipse
        (the heart's is asked for three times): the renderer's costliest array."""
        key = (cx, cy, rx, ry)
        if key not in self._ellipses:
            across = self.x - cx
            across /= rx
            np.square(across, out=across)
            down = self.y - cy
            down /= ry
            np.square(down, out=down)
            across += down
            np.sqrt(across, out=across)
            across -= 1.0
            self._ellipses[key] = across
        return self._ellipses[key]

    def lung(self, lung: _Lung) -> np.ndarray:
        """Soft mask of one lung: an ellipse above the diaphragm dome, outside the heart (cached)."""
        if lung not in self._lungs:
            self._lungs[lung] = self._lung(lung)
        return self._lungs[lung]

    def _lung(self, lung: _Lung) -> np.ndarray:
        inside = _soft(self.ellipse_distance(lung.cx, lung.cy, lung.rx, lung.ry) * lung.rx, self.edge)
        dome = lung.dome - 0.05 * (1 - ((self.x - lung.cx) / lung.rx) ** 2)
        inside = inside * _soft(self.y - dome, self.edge)
        hx, hy, hrx, hry = self.anatomy.heart
        outside_heart = 1 - _soft(self.ellipse_distance(hx, hy, hrx, hry) * hrx, self.edge)
        return np.asarray(inside * outside_heart)

    def lungs_for(self, side: str) -> list[_Lung]:
        """Patient's right lung is the image's left (image_side -1)."""
        wanted = {"right": (-1,), "left": (1,), "bilateral": (-1, 1)}[side]
        return [lung for lung in self.anatomy.lungs if lung.image_side in wanted]

    def zone_point(self, lung: _Lung, zone: str, rng: np.random.Generator) -> tuple[float, float]:
        """A point inside the lung's upper, middle or lower third, away from the edges."""
        bands = {"upper": (0.0, 0.33), "middle": (0.33, 0.62), "lower": (0.62, 0.9)}
        low, high = bands.get(zone, (0.05, 0.9))
        top = lung.cy - lung.ry
        for _ in range(200):
            y = top + (lung.dome - top) * rng.uniform(max(low, 0.1), high)
            x = lung.cx + lung.image_side * lung.rx * rng.uniform(-0.35, 0.55)
            row, col = int(y * self.size), int(x * self.size)
            if 0 <= row < self.size and 0 <= col < self.size and self.lung(lung)[row, col] > 0.9:
                return x, y
        return lung.cx, lung.cy


def _visible(profile: np.ndarray, floor: float = 0.05) -> np.ndarray:
    """Cut a soft profile's faint tail, so a finding's region is exactly where it changes pixels."""
    return np.where(profile > floor, profile, 0.0)


def _paint(finding: Finding, canvas: _Canvas, image: np.ndarray, rng: np.random.Generator) -> list[Region]:
    """Draw one localised finding onto ``image`` (in place) and return its regions."""
    regions: list[Region] = []
    lungs = canvas.lungs_for(finding.side)
    if finding.kind in ("opacity", "nodule", "mass", "atelectasis"):
        for lung in lungs:
            lung_mask = canvas.lung(lung)
            for _ in range(finding.count):
                x, y = canvas.zone_point(lung, finding.zone, rng)
                profile = _visible(_focal_profile(finding, canvas, x, y, rng) * lung_mask)
                strength = {"opacity": 0.42, "nodule": 0.55, "mass": 0.5, "atelectasis": 0.4}
                image += strength[finding.kind] * min(finding.severity, 1.3) * profile
                regions.append(Region(finding.kind, profile > 0))
    elif finding.kind == "effusion":
        for lung in lungs:
            lateral = (canvas.x - lung.cx) * lung.image_side / lung.rx
            height = 0.06 + 0.05 * finding.severity
            level = lung.dome - height - 0.05 * np.clip(lateral, -1, 1)
            fluid = _visible(canvas.lung(lung) * _soft(level - canvas.y, canvas.edge * 2))
            image += (canvas.anatomy.tissue + 0.05 - image) * fluid
            regions.append(Region("effusion", fluid > 0))
    elif finding.kind == "pneumothorax":
        for lung in lungs:
            lung_mask = canvas.lung(lung)
            interior = ndimage.distance_transform_edt(lung_mask > 0.5) / canvas.size
            depth = 0.02 + 0.025 * finding.severity
            outer = (canvas.x - lung.cx) * lung.image_side > -0.2 * lung.rx
            upper = canvas.y < lung.cy + 0.4 * lung.ry
            air = (lung_mask > 0.5) & (interior < depth) & outer & upper
            pleura = (lung_mask > 0.5) & (np.abs(interior - depth) < 1.2 / canvas.size) & outer & upper
            image[air] = canvas.anatomy.lung_density * 0.35
            image[pleura] += 0.35
            regions.append(Region("pneumothorax", air))
    elif finding.kind == "device":
        start = np.array([rng.uniform(0.38, 0.45), 0.06])
        end = np.array([canvas.anatomy.heart[0] - rng.uniform(0.0, 0.06), canvas.anatomy.heart[1] - 0.06])
        bend = rng.uniform(-0.06, 0.06)
        t = np.linspace(0, 1, 400)[:, None]
        path = (1 - t) * start + t * end + np.array([bend, 0.0]) * np.sin(np.pi * t)
        line = np.zeros_like(image, dtype=bool)
        rows = np.clip((path[:, 1] * canvas.size).astype(int), 0, canvas.size - 1)
        cols = np.clip((path[:, 0] * canvas.size).astype(int), 0, canvas.size - 1)
        line[rows, cols] = True
        line = ndimage.binary_dilation(line, iterations=max(1, canvas.size // 200))
        image[line] = 0.95
        regions.append(Region("device", line))
    return regions


def _focal_profile(
    finding: Finding, canvas: _Canvas, x: float, y: float, rng: np.random.Generator
) -> np.ndarray:
    """Density profile in [0, 1] of a focal finding centred at (x, y)."""
    if finding.kind == "atelectasis":
        angle = rng.uniform(-0.3, 0.3)
        along = (canvas.x - x) * np.cos(angle) + (canvas.y - y) * np.sin(angle)
        across = -(canvas.x - x) * np.sin(angle) + (canvas.y - y) * np.cos(angle)
        return np.asarray(
            _soft(np.abs(across) - 0.009, canvas.edge) * _soft(np.abs(along) - 0.07, canvas.edge * 3)
        )
    if finding.kind == "opacity":
        radius = (0.045 + 0.03 * finding.severity) * rng.uniform(0.85, 1.15)
        if finding.pattern == "hazy":
            radius *= 1.3
        patch = 0.55 + 0.45 * _texture(rng, canvas.size, coarse=18)
        blob = np.exp(-((((canvas.x - x) ** 2 + (canvas.y - y) ** 2) / (2 * radius**2)) ** 1.5))
        scale = 0.55 if finding.pattern == "hazy" else 1.0
        return scale * blob * patch
    radius = {"nodule": 0.014, "mass": 0.045}[finding.kind] * rng.uniform(0.8, 1.25) * finding.severity
    return _soft(np.hypot(canvas.x - x, canvas.y - y) - radius, canvas.edge)


def _with_global_changes(anatomy: _Anatomy, findings: list[Finding]) -> _Anatomy:
    """Apply the findings that reshape the anatomy itself (heart size, lung volume)."""
    for finding in findings:
        if finding.kind == "cardiomegaly":
            cx, cy, rx, ry = anatomy.heart
            grow = 1.3 + 0.15 * finding.severity
            anatomy = replace(anatomy, heart=(cx + 0.02, cy + 0.01, rx * grow, ry * 1.12))
        elif finding.kind in ("hyperinflation", "hypoinflation"):
            factor = 1.1 if finding.kind == "hyperinflation" else 0.86
            lungs = tuple(
                replace(lung, ry=lung.ry * factor, dome=lung.cy + (lung.dome - lung.cy) * factor)
                for lung in anatomy.lungs
            )
            shade = -0.05 if finding.kind == "hyperinflation" else 0.04
            anatomy = replace(anatomy, lungs=lungs, lung_density=anatomy.lung_density + shade)  # type: ignore[arg-type]
    return anatomy


def _thorax(canvas: _Canvas, rng: np.random.Generator, findings: list[Finding]) -> np.ndarray:
    anatomy = canvas.anatomy
    bx, by = anatomy.body
    body = _soft(canvas.ellipse_distance(0.5, 0.6, bx, by) * bx, canvas.edge * 2)
    image = 0.04 + (anatomy.tissue - 0.04) * body
    ribs = 0.5 + 0.5 * np.cos(
        2 * np.pi * ((canvas.y + 0.35 * (canvas.x - 0.5) ** 2) / anatomy.rib_spacing + anatomy.rib_phase)
    )
    markings = _texture(rng, canvas.size, coarse=40)
    lungs = sum(canvas.lung(lung) for lung in anatomy.lungs)
    lung_value = anatomy.lung_density + 0.06 * markings + 0.05 * (ribs > 0.85)
    if any(f.kind == "edema" for f in findings):
        hilum = sum(
            np.exp(
                -((canvas.x - lung.cx + 0.07 * lung.image_side) ** 2 + (canvas.y - lung.cy - 0.04) ** 2)
                / 0.006
            )
            for lung in anatomy.lungs
        )
        lung_value = lung_value + 0.3 * hilum + 0.12 * _texture(rng, canvas.size, coarse=64)
    image = image * (1 - lungs) + lung_value * lungs
    spine = _soft(np.abs(canvas.x - 0.5) - 0.045, canvas.edge * 2) * (canvas.y > 0.08) * body
    image = np.maximum(image, 0.72 * spine)
    hx, hy, hrx, hry = anatomy.heart
    heart = _soft(canvas.ellipse_distance(hx, hy, hrx, hry) * hrx, canvas.edge * 2)
    return np.asarray(np.maximum(image, 0.74 * heart))


def render(findings: list[Finding] | tuple[Finding, ...], seed: int, size: int = 256) -> Radiograph:
    """Render a radiograph for ``seed`` showing ``findings``; deterministic in (findings, seed, size)."""
    findings = list(findings)
    base = _Anatomy.draw(np.random.default_rng([seed, 0]))
    canvas = _Canvas(_with_global_changes(base, findings), size)
    image = _thorax(canvas, np.random.default_rng([seed, 1]), findings)
    regions: list[Region] = []
    for index, finding in enumerate(findings):
        if finding.kind in LOCALISED:
            regions += _paint(finding, canvas, image, np.random.default_rng([seed, 2, index]))
    image = ndimage.gaussian_filter(image, sigma=size / 400)
    image += np.random.default_rng([seed, 3]).normal(0.0, 0.02, size=image.shape)
    pixels = (np.clip(image, 0, 1) ** 0.9 * 255).round().astype(np.uint8)
    return Radiograph(pixels=pixels, regions=[r for r in regions if r.mask.any()])
