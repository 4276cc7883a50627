"""The repository stays true to itself: CI runs exactly the README's test command, and the conda
environments hold what pyproject.toml installs."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command() -> None:
    command = (REPO / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert command.startswith("pip install -e")
    assert command.endswith("pytest -n 2 --dist loadfile --durations=15")
    assert f"```bash\n{command}\n```" in (REPO / "README.md").read_text()


def test_readme_demo_command_runs_snakemake() -> None:
    demo = '```bash\npip install -e ".[cpu,demo]" && snakemake --cores 2\n```'
    assert demo in (REPO / "README.md").read_text()


def test_the_conda_environments_hold_the_projects_dependencies() -> None:
    """`--sdm conda` builds each rule's environment from envs/: the package's dependencies, the
    demo's weights and one faiss build (faiss-gpu for the GPU rules: the two install one module)."""
    import tomllib
    import yaml

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    # Snakemake runs outside the environments; the rules' commands run inside them.
    expected = {r for r in project["dependencies"] if not r.startswith("snakemake")} | set(extras["demo"])
    for name, faiss in (("adaptor", extras["cpu"]), ("adaptor-gpu", extras["gpu"])):
        environment = yaml.safe_load((REPO / "envs" / f"{name}.yaml").read_text())
        pip = next(entry["pip"] for entry in environment["dependencies"] if isinstance(entry, dict))
        assert set(pip) == expected | {requirement.split(";")[0].strip() for requirement in faiss}, name
