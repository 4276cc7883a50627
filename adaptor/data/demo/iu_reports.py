"""Read the Indiana University reports that torchxrayvision ships, and map their MeSH labels.

The archive (CC BY-NC-ND 4.0) is read from the installed package at run time and never copied
into the repository.
"""

from __future__ import annotations

import importlib.util
import tarfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from adaptor.data.demo.render import Finding

ARCHIVE = "data/NLMCXR_reports.tgz"

# MeSH heading (first path element) -> the renderer's finding kind.
_KIND_BY_HEADING = {
    "Cardiomegaly": "cardiomegaly",
    "Pleural Effusion": "effusion",
    "Opacity": "opacity",
    "Airspace Disease": "opacity",
    "Infiltrate": "opacity",
    "Consolidation": "opacity",
    "Pneumonia": "opacity",
    "Density": "opacity",
    "Pulmonary Atelectasis": "atelectasis",
    "Nodule": "nodule",
    "Calcified Granuloma": "nodule",
    "Granuloma": "nodule",
    "Granulomatous Disease": "nodule",
    "Mass": "mass",
    "Pneumothorax": "pneumothorax",
    "Catheters, Indwelling": "device",
    "Implanted Medical Device": "device",
    "Surgical Instruments": "device",
    "Tube, Inserted": "device",
    "Medical Device": "device",
    "Stents": "device",
    "Foreign Bodies": "device",
    "Pulmonary Congestion": "edema",
    "Pulmonary Edema": "edema",
    "Lung Diseases, Interstitial": "edema",
    "Emphysema": "hyperinflation",
    "Pulmonary Emphysema": "hyperinflation",
    "Pulmonary Disease, Chronic Obstructive": "hyperinflation",
    "Lung, Hyperlucent": "hyperinflation",
}
_KIND_BY_LUNG_QUALIFIER = {
    "hypoinflation": "hypoinflation",
    "hyperdistention": "hyperinflation",
    "interstitial": "edema",
}
_KIND_BY_SECOND = {
    ("Costophrenic Angle", "blunted"): "effusion",
    ("Cardiac Shadow", "enlarged"): "cardiomegaly",
}


@dataclass(frozen=True)
class IUReport:
    """One report: its IU id, its two text sections and the findings its labels name."""

    uid: str
    findings: str
    impression: str
    mesh: tuple[str, ...]
    rendered: tuple[Finding, ...]


def archive_path() -> Path:
    """Locate the report archive inside the installed torchxrayvision package, without importing
    the package (its import loads torch and torchvision: seconds per demo job)."""
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("The demo needs torchxrayvision's package data: pip install -e '.[demo]'")
    return Path(next(iter(spec.submodule_search_locations))) / ARCHIVE


def finding_from_mesh(term: str) -> Finding | None:
    """Translate one MeSH major term such as ``Opacity/lung/base/left`` into a rendered finding."""
    parts = [p.strip() for p in term.split("/")]
    heading, qualifiers = parts[0], parts[1:]
    kind = _KIND_BY_HEADING.get(heading)
    if heading == "Lung":
        kind = next((_KIND_BY_LUNG_QUALIFIER[q] for q in qualifiers if q in _KIND_BY_LUNG_QUALIFIER), None)
    if kind is None:
        kind = next(
            (_KIND_BY_SECOND[(heading, q)] for q in qualifiers if (heading, q) in _KIND_BY_SECOND), None
        )
    if kind is None:
        return None
    sides = {"left", "right", "bilateral"} & set(qualifiers)
    side = "bilateral" if len(sides) != 1 else sides.pop()
    if kind in ("cardiomegaly", "hyperinflation", "hypoinflation", "edema"):
        side = "bilateral"
    zone = "any"
    for qualifier, name in (
        ("upper lobe", "upper"),
        ("apex", "upper"),
        ("middle lobe", "middle"),
        ("lingula", "middle"),
        ("hilum", "middle"),
        ("lower lobe", "lower"),
        ("base", "lower"),
        ("costophrenic angle", "lower"),
        ("retrocardiac", "lower"),
    ):
        if qualifier in qualifiers:
            zone = name
            break
    if kind == "effusion":
        zone = "lower"
    severity = 1.0
    if {"mild", "small", "borderline"} & set(qualifiers):
        severity = 0.7
    if {"large", "severe", "moderate"} & set(qualifiers):
        severity = 1.3
    count = 3 if "multiple" in qualifiers or "scattered" in qualifiers else 1
    return Finding(kind=kind, side=side, zone=zone, severity=severity, count=count)


def read_iu_reports(limit: int | None = None) -> list[IUReport]:
    """Parse the reports in a stable order (by numeric IU id); ``limit`` keeps the first ones."""
    reports: list[IUReport] = []
    with tarfile.open(archive_path(), "r:gz") as archive:
        members = [m for m in archive.getmembers() if m.isfile() and m.name.endswith(".xml")]
        members.sort(key=lambda m: int(Path(m.name).stem))
        for member in members[:limit]:
            handle = archive.extractfile(member)
            assert handle is not None
            root = ET.parse(handle).getroot()
            sections = {a.get("Label"): (a.text or "").strip() for a in root.iter("AbstractText")}
            mesh = tuple(m.text.strip() for m in root.iter("major") if m.text)
            rendered = tuple(f for f in map(finding_from_mesh, mesh) if f is not None)
            reports.append(
                IUReport(
                    uid=f"CXR{Path(member.name).stem}",
                    findings=sections.get("FINDINGS", ""),
                    impression=sections.get("IMPRESSION", ""),
                    mesh=mesh,
                    rendered=rendered,
                )
            )
    return reports
