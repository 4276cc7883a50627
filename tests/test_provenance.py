import importlib.metadata
import platform
import subprocess
from pathlib import Path

import pytest

import adaptor
from adaptor import provenance
from adaptor.provenance import SOFTWARE, SOFTWARE_COLUMNS, checkout_commit, software, software_columns

REPO = Path(__file__).resolve().parents[1]


def test_software_names_this_processs_stack() -> None:
    found = software()
    assert tuple(found) == SOFTWARE
    assert found["adaptor"] == adaptor.__version__ == importlib.metadata.version("adaptor")
    assert found["python"] == platform.python_version()
    for library in ("torch", "timm", "transformers", "numpy"):
        assert found[library] == importlib.metadata.version(library)
    assert found["cuda"] is None and found["cudnn"] is None  # nothing ran on a GPU


def test_cuda_is_recorded_for_work_on_a_gpu() -> None:
    import torch

    assert software(on_cuda=True)["cuda"] == torch.version.cuda


def test_the_commit_is_the_checkouts_and_says_when_it_differs() -> None:
    git = ["git", "-C", str(REPO)]
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    changed = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert checkout_commit() == (f"{head}+dirty" if changed else head)


def test_a_copy_outside_a_checkout_has_an_unknown_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(adaptor, "__file__", str(tmp_path / "site-packages" / "adaptor" / "__init__.py"))
    checkout_commit.cache_clear()
    try:
        assert checkout_commit() == "unknown"
    finally:
        checkout_commit.cache_clear()


def test_a_checkout_without_git_has_an_unknown_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".git").mkdir()  # looks like a checkout, but git cannot read it
    monkeypatch.setattr(adaptor, "__file__", str(tmp_path / "adaptor" / "__init__.py"))
    checkout_commit.cache_clear()
    try:
        assert provenance.checkout_commit() == "unknown"
    finally:
        checkout_commit.cache_clear()


def test_columns_of_a_record_and_of_none() -> None:
    columns = software_columns(software())
    assert tuple(columns) == SOFTWARE_COLUMNS and columns["software_python"] == platform.python_version()
    assert software_columns(None) == dict.fromkeys(SOFTWARE_COLUMNS)
