"""Dry runs of the DAG from configurations alone (no finished run): the paper's and the demo's
shapes, data and config errors, and the protocols' splits."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from adaptor.data.releases import label_files
from adaptor.results.figure_files import FORMATS, figure_entries, table_entries

REPO = Path(__file__).resolve().parents[2]
Snakemake = Callable[..., subprocess.CompletedProcess[str]]
Scheduled = Callable[[subprocess.CompletedProcess[str]], dict[str, int]]
TINY = Path(__file__).with_name("tiny.yaml")  # the test workflow's config
FIXTURES = REPO / "tests" / "fixtures"


def repository_root_with_data(tmp_path: Path, config: Path) -> Path:
    """A folder laid out like the repository root (Snakefile, workflow/, config/ with the demo's
    config in it), with empty placeholders for the label files ``config``'s datasets need."""
    for name in ("Snakefile", "workflow", "config"):
        (tmp_path / name).symlink_to(REPO / name)
    for entry in yaml.safe_load(config.read_text())["datasets"].values():
        for path in label_files(entry["reader"], tmp_path / entry["root"], entry).values():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir() if path.suffix == "" else path.touch()
    return tmp_path


def test_the_papers_sweep_embeds_each_encoder_once_per_dataset(
    tmp_path: Path, snakemake: Snakemake, scheduled: Scheduled
) -> None:
    paper = REPO / "config/paper.yaml"
    result = snakemake(repository_root_with_data(tmp_path, paper), paper, "-n")
    jobs = scheduled(result)
    # MIMIC: 3 image + 5 text encoders; RSNA, COVIDx, CheXpert, SIIM: the 3 image encoders and
    # their random floors. 4 parts each.
    assert (jobs["embed_init"], jobs["embed_part"], jobs["embed_finalize"]) == (32, 128, 32)
    assert jobs["pretrain"] == 15  # 3 x 5 Adaptors, none with an encoder in the loop
    assert jobs["adaptor_features"] == 4 * 15 and jobs["masks"] == 2 * 3
    models = 15 + 3 + 3  # Adaptors, frozen encoders, random floors
    assert jobs["evaluate_classification"] == 3 * models * 3  # datasets x models x seeds, every fraction
    assert jobs["evaluate_segmentation"] == 2 * models * 3 and jobs["evaluate_zeroshot"] == 3 * 15
    assert "resources: tmpdir=/tmp, gpu=1, nvidia_gpu=1" in result.stdout


def _settings(commands: str, command: str) -> list[dict]:
    """The --settings JSON of every printed ``python -m adaptor <command>`` line."""
    found = []
    for line in commands.splitlines():
        words = shlex.split(line) if f"python -m adaptor {command} " in line else []
        if words:
            found.append(json.loads(words[words.index("--settings") + 1]))
    return found


def test_the_paper_config_from_the_repository_root_is_the_papers_recipe(
    tmp_path: Path, workflow_env: dict[str, str]
) -> None:
    """``snakemake -n -p --configfile config/paper.yaml`` as a user types it at the repository
    root, where config/demo.yaml sits too: nothing of the demo's recipe may leak in."""
    root = repository_root_with_data(tmp_path, REPO / "config/paper.yaml")
    command = [sys.executable, "-m", "snakemake", "-n", "-p", "--configfile", "config/paper.yaml"]
    result = subprocess.run(command, cwd=root, capture_output=True, text=True, env=workflow_env, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    pretrain = _settings(result.stdout, "pretrain")
    assert len(pretrain) == 15
    recipe = {"epochs": 50, "batch_size": 1024, "lr": 2e-5, "patience": 10, "weight_decay": 0.01}
    assert all(settings.items() >= recipe.items() and "architecture" not in settings for settings in pretrain)
    decoders = _settings(result.stdout, "segment")
    reference = {"channels": [768, 512, 256, 128, 64], "batch_size": 4, "max_epochs": 100, "patience": 10}
    assert decoders and all(settings.items() >= reference.items() for settings in decoders)
    demo = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-p"],
        cwd=root,
        capture_output=True,
        text=True,
        env=workflow_env,
    )
    assert {"epochs": 30, "batch_size": 256}.items() <= _settings(demo.stdout, "pretrain")[0].items()


def test_a_dry_run_names_missing_label_files(tmp_path: Path, workflow_env: dict[str, str]) -> None:
    for name in ("Snakefile", "workflow", "config"):
        (tmp_path / name).symlink_to(REPO / name)
    command = [sys.executable, "-m", "snakemake", "-n", "--configfile", "config/paper.yaml"]
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, env=workflow_env, check=False
    )
    assert result.returncode != 0
    assert "Missing input files for rule prepare" in result.stdout + result.stderr
    assert "data/mimic-cxr-jpg/mimic-cxr-2.0.0-metadata.csv.gz" in result.stdout + result.stderr


def test_an_edited_label_file_reruns_prepare(
    tmp_path: Path, snakemake: Snakemake, scheduled: Scheduled
) -> None:
    config = yaml.safe_load(TINY.read_text())
    (tmp_path / "rsna").symlink_to(FIXTURES / "rsna")
    labels = tmp_path / "labels" / "stage_2_train_labels.csv"
    labels.parent.mkdir()
    labels.write_text((FIXTURES / "rsna" / "stage_2_train_labels.csv").read_text())
    config["datasets"]["rsna"] = {
        "reader": "rsna",
        "root": ".",
        "labels": "labels/stage_2_train_labels.csv",
        "images": "rsna/stage_2_train_images",
    }
    real = tmp_path / "real.yaml"
    real.write_text(yaml.safe_dump(config))
    manifest = "results/manifests/rsna.parquet"
    assert snakemake(tmp_path, real, manifest).returncode == 0
    assert scheduled(snakemake(tmp_path, real, "-n", manifest)) == {}
    os.utime(labels)  # touched, not edited: Snakemake's checksum of the input says nothing changed
    assert scheduled(snakemake(tmp_path, real, "-n", manifest)) == {}
    with open(labels, "a") as handle:
        handle.write("00aecb01-a116-45a2-956c-08d2fa55433f,600.0,300.0,90.0,120.0,1\n")  # a second box
    assert scheduled(snakemake(tmp_path, real, "-n", manifest)) == {"prepare": 1}


def test_the_demo_fans_out_one_job_per_seed(
    tmp_path: Path, snakemake: Snakemake, scheduled: Scheduled
) -> None:
    result = snakemake(tmp_path, REPO / "config/demo.yaml", "-n")
    jobs = scheduled(result)
    # (dataset, method, seed): 3 datasets x 3 methods x 3 seeds, each job writing its 3 fractions'
    # cells, and SIIM + RSNA boxes for segmentation; zero-shot once per dataset for the Adaptor
    assert jobs["evaluate_classification"] == 27 and jobs["subsets"] == (3 + 2) * 3  # (dataset, task, seed)
    assert jobs["evaluate_segmentation"] == 18 and jobs["evaluate_zeroshot"] == 3 and jobs["masks"] == 2
    assert jobs["zeroshot_split"] == 3
    outputs = "output: results/runs/rsna/classification/adaptor/"
    adaptor_jobs = [line for line in result.stdout.splitlines() if outputs in line]
    assert len(adaptor_jobs) == 3 and all(line.count(".parquet") == 3 for line in adaptor_jobs)  # 3 fractions
    # embed.parts 1: each cache is one job (5 image caches, 4 random floors, 1 text cache)
    assert jobs["embed"] == 10 and not {"embed_init", "embed_part", "embed_finalize"} & set(jobs)
    # The figures job's outputs are every figure of the report, SVG and PNG; the report job's
    # include every table page.
    demo = yaml.safe_load((REPO / "config/demo.yaml").read_text())["evaluate"]
    listed = figure_entries(
        demo["classification"]["datasets"],
        demo["segmentation"]["datasets"],
        list(demo["zeroshot"]["prompts"]),
    )
    outputs = {line.split("output: ", 1)[1] for line in result.stdout.splitlines() if "output: " in line}
    (figures,) = [line for line in outputs if "results/figures/" in line]
    assert sorted(figures.split(", ")) == sorted(
        f"results/figures/{entry.name}.{extension}" for entry in listed for extension in FORMATS
    )
    (tables,) = [line for line in outputs if "results/report_tables/" in line]
    assert {f"results/report_tables/{entry.name}.html" for entry in table_entries()} <= set(
        tables.split(", ")
    )


def test_the_demo_sweep_adds_a_2x2_encoder_grid_without_a_second_floor(
    tmp_path: Path, snakemake: Snakemake, scheduled: Scheduled
) -> None:
    demo, sweep = REPO / "config/demo.yaml", REPO / "config/demo_sweep.yaml"
    result = snakemake(tmp_path, demo, "-n", "--printshellcmds", "--configfile", str(demo), str(sweep))
    jobs = scheduled(result)
    assert jobs["pretrain"] == 4 and jobs["adaptor_features"] == 4 * 4  # 2 x 2 Adaptors, 4 evaluated sets
    # The Adaptors' 4 cells per (dataset, seed), then the encoder alone and the random floor once each:
    # frozen on the random twin would be the random floor again.
    assert jobs["evaluate_classification"] == (4 + 1 + 1) * 3 * 3
    assert jobs["evaluate_segmentation"] == (4 + 1 + 1) * 2 * 3 and jobs["evaluate_zeroshot"] == 4 * 3
    # 5 images x (the encoder, its twin) and MIMIC's reports x 2 text settings
    assert jobs["embed"] == 5 * 2 + 2
    commands = [line for line in result.stdout.splitlines() if "python -m adaptor evaluate " in line]
    alone = [line for line in commands if "--method frozen " in line or "--method random " in line]
    assert alone and not any("--image-encoder efficientnet_lite0@random" in line for line in alone)
    assert "@random@random" not in result.stdout


def test_bad_config_names_the_key(tmp_path: Path, snakemake: Snakemake) -> None:
    config = yaml.safe_load(TINY.read_text())
    config["pretrain"]["epochs"] = "ten"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, bad, "-n")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "epochs" in output and "ten" in output
    config["pretrain"]["epochs"] = 3
    config["evaluate"]["classification"]["datasets"] = ["rsna", "padchest"]
    bad.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, bad, "-n")
    assert "evaluate: dataset 'padchest' is not in datasets" in result.stdout + result.stderr
    config["evaluate"]["classification"]["datasets"] = ["rsna"]
    config["embed"].update(tokens=["mimic"], stages=[])
    bad.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, bad, "-n")
    output = result.stdout + result.stderr
    assert "evaluate.segmentation.datasets: 'rsna' needs patch tokens for the conv decoder" in output
    assert "adaptor_tokens reads patch tokens; add 'rsna' to embed.tokens" in output


def test_the_mgca_protocol_draws_mgcas_split_per_task(
    tmp_path: Path, snakemake: Snakemake, scheduled: Scheduled
) -> None:
    config = yaml.safe_load((REPO / "config/demo.yaml").read_text())
    config["evaluate"]["protocol"] = "mgca"
    mgca = tmp_path / "mgca.yaml"
    mgca.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, mgca, "-n")
    assert "dataset 'chexpert' (reader chexpert) has none" in result.stdout + result.stderr
    config["evaluate"]["classification"]["datasets"].remove("chexpert")  # zero-shot on it stays
    mgca.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, mgca, "-n", "--printshellcmds")
    assert scheduled(result)["subsets"] == (2 + 2) * 3  # classification, segmentation; per seed
    assert scheduled(result)["zeroshot_split"] == 3
    tasks = (
        ("classification", "rsna"),
        ("segmentation", "rsna"),
        ("segmentation", "siim"),
        ("zeroshot", "chexpert"),
    )
    for task, reader in tasks:
        assert f"--protocol mgca --task {task} --reader {reader}" in result.stdout
