"""The repository stays true to itself: CI runs exactly the README's test command (the locks and
the conda environments: test_lock.py)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command() -> None:
    command = (REPO / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert command.startswith("pip install -c envs/lock-cpu.txt -e")
    assert command.endswith("pytest -n 2 --dist loadfile --durations=15")
    assert f"```bash\n{command}\n```" in (REPO / "README.md").read_text()


def test_readme_demo_command_runs_snakemake() -> None:
    demo = '```bash\npip install -c envs/lock-cpu.txt -e ".[cpu,demo]" && snakemake --cores 2\n```'
    assert demo in (REPO / "README.md").read_text()
