"""The software a result was made with, recorded beside every result row and every trained
Adaptor: embeddings, heads and bootstrap intervals move with the torch, timm and transformers
versions, so a number is only reproducible together with the stack that made it."""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import subprocess
from collections.abc import Mapping
from pathlib import Path

import adaptor

UNKNOWN = "unknown"
# The libraries whose versions move the numbers, by distribution name.
LIBRARIES = ("torch", "timm", "transformers", "numpy")
SOFTWARE = ("adaptor", "commit", "python", *LIBRARIES, "cuda", "cudnn")
# The result tables' columns, one per entry of SOFTWARE, in that order.
SOFTWARE_COLUMNS = tuple(f"software_{name}" for name in SOFTWARE)


@functools.cache
def checkout_commit() -> str:
    """The commit of the git checkout the package runs from, ``+dirty`` when tracked files differ
    from it; ``unknown`` for an installed copy (no checkout around the package) or without git."""
    root = Path(adaptor.__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return UNKNOWN

    def git(*arguments: str) -> str:
        command = ["git", "-C", str(root), *arguments]
        return subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout.strip()

    try:
        head = git("rev-parse", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    return f"{head}+dirty" if changed else head


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return UNKNOWN


def software(on_cuda: bool = False) -> dict[str, str | None]:
    """This process's stack, by the names of SOFTWARE; CUDA and cuDNN only for work done on a GPU
    (``on_cuda``), else None. Versions come from package metadata, so nothing heavy is imported."""
    found: dict[str, str | None] = {
        "adaptor": adaptor.__version__,
        "commit": checkout_commit(),
        "python": platform.python_version(),
    }
    found |= {library: _version(library) for library in LIBRARIES}
    found["cuda"], found["cudnn"] = None, None
    if on_cuda:
        import torch

        found["cuda"] = torch.version.cuda
        cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        found["cudnn"] = None if cudnn is None else str(cudnn)
    return found


def software_columns(recorded: Mapping[str, object] | None) -> dict[str, object]:
    """A ``software()`` record as the tables' ``software_*`` columns; a record made before
    provenance existed (None, or a name missing) gives nulls, never a guess."""
    recorded = recorded or {}
    return {column: recorded.get(name) for name, column in zip(SOFTWARE, SOFTWARE_COLUMNS, strict=True)}
