"""The locks hold the project (envs/refresh_locks.py writes them; docs/environment.md):

- every dependency of every extra a lock is made for, and what those need in turn (with the
  extras they ask for), pinned once and inside its range, on every platform the lock is for;
- the rules' conda environments at their lock's versions;
- the lint, format and type checkers and the test runner pinned exactly;
- this environment installed from a lock, every pin at its version."""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Mapping
from pathlib import Path

import pytest
import tomllib
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
PYTHON = {"python_version": "3.11", "python_full_version": "3.11.7", "implementation_name": "cpython"}
PYTHON |= {"platform_python_implementation": "CPython"}
LINUX = PYTHON | {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix"}
PLATFORMS = {
    "linux-x86_64": LINUX | {"platform_machine": "x86_64"},
    "linux-aarch64": LINUX | {"platform_machine": "aarch64"},
    "macos-arm64": PYTHON
    | {"sys_platform": "darwin", "platform_system": "Darwin", "os_name": "posix"}
    | {"platform_machine": "arm64"},
    "windows-amd64": PYTHON
    | {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt"}
    | {"platform_machine": "AMD64"},
}
# Each lock: the extras it installs and the platforms it is resolved for.
LOCKS = {
    "cpu": (("cpu", "demo", "test"), tuple(PLATFORMS)),
    "gpu": (("gpu", "demo", "test"), ("linux-x86_64",)),
}
ENVIRONMENTS = {"cpu": "adaptor", "gpu": "adaptor-gpu"}
EXACT = ("pytest", "pytest-xdist", "ruff", "snakefmt", "mypy", "types-pyyaml")

Pins = dict[str, tuple[Version, Requirement]]


def lock_lines(path: Path) -> list[Requirement]:
    """A lock's pins, as written (a pin line starts in the first column; comments and uv's
    annotations do not)."""
    text = path.read_text().splitlines()
    return [Requirement(line) for line in text if line and not line.startswith(("#", " ", "-"))]


def pins_on(requirements: list[Requirement], platform: Mapping[str, str]) -> Pins:
    """The version each package is pinned to on one platform; two pins for one package is an error."""
    pins: Pins = {}
    for requirement in requirements:
        if requirement.marker and not requirement.marker.evaluate(dict(platform)):
            continue
        name = canonicalize_name(requirement.name)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"{requirement}: not an exact pin"
        assert name not in pins, f"{name} pinned twice on {dict(platform)}: {pins[name][1]}, {requirement}"
        pins[name] = (Version(specifier.version), requirement)
    return pins


def project_requirements(extras: tuple[str, ...]) -> list[Requirement]:
    """pyproject.toml's dependencies with these extras, the project's own extras named by an extra
    (``adaptor[slurm,kubernetes]``) expanded."""
    requirements = [Requirement(r) for r in PROJECT["dependencies"]]
    pending, seen = list(extras), set()
    while pending:
        extra = pending.pop()
        seen.add(extra)
        for entry in PROJECT["optional-dependencies"][extra]:
            requirement = Requirement(entry)
            if requirement.name == PROJECT["name"]:
                pending += [e for e in requirement.extras if e not in seen]
            else:
                requirements.append(requirement)
    return requirements


def installed_requirements(name: str, version: Version, extras: set[str]) -> list[tuple[Requirement, str]]:
    """What an installed package needs (with each requirement's extra), read from its metadata when
    the installed version is the pinned one; nothing when it is not installed here."""
    try:
        if Version(importlib.metadata.version(name)) != version:
            return []
    except importlib.metadata.PackageNotFoundError:
        return []
    needs = [Requirement(r) for r in importlib.metadata.requires(name) or []]
    return [(requirement, extra) for requirement in needs for extra in ("", *sorted(extras))]


def unpinned(requirements: list[Requirement], pins: Pins, platform: Mapping[str, str]) -> list[str]:
    """Every requirement reachable from ``requirements`` on ``platform`` (through the metadata of the
    packages installed here) that the pins lack or pin outside its range."""
    problems: list[str] = []
    pending = [(requirement, "") for requirement in requirements]
    walked: set[tuple[str, frozenset[str]]] = set()
    while pending:
        requirement, extra = pending.pop()
        if requirement.marker and not requirement.marker.evaluate(dict(platform) | {"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement} is not in the lock")
            continue
        version = pins[name][0]
        if not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement} but the lock pins {name}=={version}")
        key = (name, frozenset(requirement.extras))
        if key not in walked:
            walked.add(key)
            pending += installed_requirements(name, version, set(requirement.extras))
    return problems


@pytest.mark.parametrize("flavour", LOCKS)
def test_the_lock_pins_every_dependency_inside_its_range(flavour: str) -> None:
    extras, platforms = LOCKS[flavour]
    lock = lock_lines(REPO / "envs" / f"lock-{flavour}.txt")
    for platform in platforms:
        problems = unpinned(
            project_requirements(extras), pins_on(lock, PLATFORMS[platform]), PLATFORMS[platform]
        )
        assert not problems, (
            f"envs/lock-{flavour}.txt on {platform}: {problems[:5]}; run envs/refresh_locks.py"
        )


@pytest.mark.parametrize("flavour", LOCKS)
def test_the_rules_environments_hold_the_lock_versions(flavour: str) -> None:
    """`--sdm conda` builds each rule's environment from envs/: every package the rules import (the
    dependencies but Snakemake, which runs outside them, the demo's weights, one faiss), each at
    its lock's version."""
    environment = yaml.safe_load((REPO / "envs" / f"{ENVIRONMENTS[flavour]}.yaml").read_text())
    listed = next(entry["pip"] for entry in environment["dependencies"] if isinstance(entry, dict))
    lock = lock_lines(REPO / "envs" / f"lock-{flavour}.txt")
    extras = PROJECT["optional-dependencies"]
    rules = [Requirement(r) for r in PROJECT["dependencies"] if not r.startswith("snakemake")]
    rules += [Requirement(r) for r in extras["demo"] + extras[flavour]]
    for platform in LOCKS[flavour][1]:
        pins, locked = (
            pins_on([Requirement(r) for r in listed], PLATFORMS[platform]),
            pins_on(lock, PLATFORMS[platform]),
        )
        assert not unpinned(rules, pins, PLATFORMS[platform]), platform
        differ = {
            name: (version, locked.get(name))
            for name, (version, _) in pins.items()
            if locked.get(name, [None])[0] != version
        }
        assert not differ, f"{ENVIRONMENTS[flavour]}.yaml differs from the lock on {platform}: {differ}"


def test_the_checkers_and_the_test_runner_are_pinned_exactly() -> None:
    """A release of ruff, mypy or snakefmt must not fail unchanged code: pinned in pyproject.toml
    itself, not only in the lock, so an install without the lock checks the same way."""
    test = {
        canonicalize_name(Requirement(r).name): Requirement(r)
        for r in PROJECT["optional-dependencies"]["test"]
    }
    for name in EXACT:
        (specifier,) = test[name].specifier
        assert specifier.operator == "==", f"{test[name]}: pin it exactly"


def test_faiss_builds_exclude_each_other_in_the_locks() -> None:
    for flavour, other in (("cpu", "faiss-gpu"), ("gpu", "faiss-cpu")):
        names = {canonicalize_name(r.name) for r in lock_lines(REPO / "envs" / f"lock-{flavour}.txt")}
        assert f"faiss-{flavour}" in names and other not in names, flavour


def test_this_environment_is_installed_from_a_lock() -> None:
    """Every pin of the lock that applies here is installed at its version (the lock of the faiss
    build installed here): otherwise the tests check a stack the lock does not describe."""
    flavour = "gpu" if _installed("faiss-gpu") else "cpu"
    pins = pins_on(lock_lines(REPO / "envs" / f"lock-{flavour}.txt"), default_environment())
    found = {name: _installed(name) for name in pins}
    differ = {
        name: (found[name], str(version))
        for name, (version, _) in pins.items()
        if found[name] != str(version)
    }
    command = f'pip install -c envs/lock-{flavour}.txt -e ".[{flavour},demo,test]"'
    assert not differ, f"installed, locked: {differ}; install with {command}"


def _installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def test_every_install_the_project_documents_uses_a_lock() -> None:
    """The README's installs, CI's and the conda environment file name a lock; the lock matches the
    faiss build their extras install."""
    installs = re.findall(
        r"pip install [^&`\n]*", (REPO / "README.md").read_text() + (REPO / ".ci" / "run").read_text()
    )
    assert len(installs) >= 3, installs
    for install in installs:
        if "-e" not in install:
            continue
        flavour = re.search(r"-c envs/lock-(cpu|gpu)\.txt", install)
        assert flavour, f"{install}: not constrained by a lock"
        assert flavour.group(1) in re.search(r"\[([a-z,]+)\]", install).group(1).split(","), install
    conda = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(entry["pip"] for entry in conda["dependencies"] if isinstance(entry, dict))
    assert "-c envs/lock-cpu.txt" in pip and any(line.startswith("-e .[cpu") for line in pip), pip
