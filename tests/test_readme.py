"""Every command the README shows works: Snakemake commands by a dry run of the demo, ``python -m
adaptor`` commands by their ``--help`` listing every option used, installs by the extras they name,
pytest selections by the markers they name. The test command itself is CI's (test_repository.py)."""

from __future__ import annotations

import importlib.metadata
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

Snakemake = Callable[..., subprocess.CompletedProcess[str]]
Scheduled = Callable[[subprocess.CompletedProcess[str]], dict[str, int]]

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
EXTRAS = set(importlib.metadata.metadata("adaptor").get_all("Provides-Extra") or [])
CI_COMMAND = (REPO / ".ci" / "run").read_text().strip().splitlines()[-1]
PROGRAMS = ("pip", "snakemake", "python", "pytest", "conda", "ruff", "snakefmt", "bash")


def readme_commands() -> list[str]:
    """Each command of the README's bash blocks and inline code, split at ``&&``, comments cut."""
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.DOTALL)
    lines = [line for block in blocks for line in block.splitlines()]
    found: list[str] = []
    for line in [*lines, *re.findall(r"`([^`\n]+)`", README)]:
        for part in line.split(" #")[0].split("&&"):
            command = part.strip()
            if command.split(" ", 1)[0] in PROGRAMS and command not in found:
                found.append(command)
    return found


COMMANDS = readme_commands()


def _of(program: str) -> list[str]:
    return [command for command in COMMANDS if command.split(" ", 1)[0] == program]


def test_every_readme_command_has_a_check() -> None:
    assert len(COMMANDS) >= 10, COMMANDS
    checked = {"pip", "snakemake", "python", "pytest", "conda", "bash"}
    for command in COMMANDS:
        assert command.split(" ", 1)[0] in checked or command in CI_COMMAND, command


@pytest.mark.parametrize("command", _of("pip"))
def test_pip_installs_name_extras_the_project_has(command: str) -> None:
    extras = re.fullmatch(r'pip install -c envs/lock-(cpu|gpu)\.txt -e "\.\[([a-z,]+)\]"', command)
    assert extras, f"{command}: not an install of this project with extras, from a lock"
    assert (REPO / "envs" / f"lock-{extras.group(1)}.txt").is_file()
    assert extras.group(1) in extras.group(2).split(","), f"{command}: the lock of the other faiss build"
    assert set(extras.group(2).split(",")) <= EXTRAS
    assert not {"cpu", "gpu"} <= set(extras.group(2).split(",")), "faiss-cpu and faiss-gpu exclude each other"


@pytest.mark.parametrize("command", _of("pytest"))
def test_pytest_selections_name_registered_markers(command: str, pytestconfig: pytest.Config) -> None:
    words = shlex.split(command)
    markers = {entry.split(":")[0] for entry in pytestconfig.getini("markers")}
    if "-m" in words:
        expression = words[words.index("-m") + 1]
        assert set(re.findall(r"\w+", expression)) - {"not", "and", "or"} <= markers, expression
    if "-n" in words:
        test_requirements = [
            r for r in importlib.metadata.requires("adaptor") or [] if 'extra == "test"' in r
        ]
        assert any(requirement.startswith("pytest-xdist") for requirement in test_requirements)


@pytest.mark.parametrize("command", _of("conda"))
def test_conda_environment_file_exists(command: str) -> None:
    words = shlex.split(command)
    environment = yaml.safe_load((REPO / words[words.index("-f") + 1]).read_text())
    assert "dependencies" in environment


@pytest.mark.parametrize("command", _of("python"))
def test_python_commands_accept_their_options(command: str) -> None:
    words = shlex.split(command)
    assert words[:3] == ["python", "-m", "adaptor"], command
    subcommands = [word for word in words[3:] if not word.startswith("-")][:1]
    helped = subprocess.run(
        [sys.executable, "-m", "adaptor", *subcommands, "--help"], capture_output=True, text=True, cwd=REPO
    )
    assert helped.returncode == 0, helped.stderr
    for option in (word.split("=")[0] for word in words if word.startswith("--")):
        assert option in helped.stdout, f"{command}: {option} is not an option"


@pytest.mark.parametrize("command", _of("bash"))
def test_bash_commands_run_scripts_of_the_repository_that_parse(command: str) -> None:
    script = REPO / shlex.split(command)[1]
    assert script.is_file(), f"{command}: no such script"
    parsed = subprocess.run(["bash", "-n", str(script)], check=False)
    assert parsed.returncode == 0, f"{command}: syntax error"


def _reports(commands: list[str]) -> list[str]:
    return [command for command in commands if "--report" in command]


@pytest.mark.parametrize("command", [c for c in _of("snakemake") if c not in _reports(COMMANDS)])
def test_snakemake_commands_plan_on_the_demo(
    command: str, tmp_path: Path, snakemake: Snakemake, scheduled: Scheduled
) -> None:
    """A dry run from a repository-like folder on the demo's config; a forced rule must be one of
    the DAG's rules, and a forced or targeted file the output of one of its jobs."""
    for name in ("Snakefile", "workflow", "config"):
        (tmp_path / name).symlink_to(REPO / name)
    demo = REPO / "config" / "demo.yaml"
    arguments = [word for word in shlex.split(command)[1:] if word != "-n"]
    jobs = scheduled(snakemake(tmp_path, demo, *arguments, "-n"))
    assert jobs.get("demo_data") == 5, jobs  # nothing is built: every command plans from the demo's data on
    named = [arguments[i + 1] for i, word in enumerate(arguments) if word == "--forcerun"]
    named += [word for word in arguments if word.startswith("results/")]
    for name in dict.fromkeys(named):
        if "/" not in name:
            assert name in jobs, f"{command}: no rule {name}"
            continue
        alone = snakemake(tmp_path, demo, name, "-n")
        assert scheduled(alone), f"{command}: nothing writes {name}"
        assert f"output: {name}" in alone.stdout or f", {name}" in alone.stdout, alone.stdout[-2000:]


@pytest.mark.parametrize("command", _reports(_of("snakemake")))
def test_snakemake_report_commands_build_the_report_of_a_finished_run(
    command: str, finished_run: Path, tmp_path: Path, snakemake: Snakemake
) -> None:
    """A report needs a finished run: the session's tiny workflow, its report written elsewhere."""
    arguments = shlex.split(command)[1:]
    arguments[arguments.index("--report") + 1] = str(tmp_path / "report.html")
    result = snakemake(finished_run, REPO / "tests" / "workflow" / "tiny.yaml", *arguments)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "report.html").stat().st_size > 0
