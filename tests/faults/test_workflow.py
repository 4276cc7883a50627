"""What an unlucky operator does to a finished run: force or kill pre-training, damage a cache, run a
config whose paths hold shell syntax. Each on a copy of the session's finished tiny run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.fault_injection  # slow: pytest -m fault_injection runs these alone


REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "workflow" / "tiny.yaml"
POOLED = "results/adaptors/efficientnet_lite0/minilm/pooled"
CELL = "results/runs/rsna/classification/frozen/efficientnet_lite0/none/1.0/0.parquet"
Snakemake = Callable[..., subprocess.CompletedProcess[str]]
LONGER = 12  # pre-training epochs for the kill


def copy_of_run(run: Path, destination: Path) -> Path:
    """A copy of a workflow folder, Snakemake's records and file times included."""
    return Path(shutil.copytree(run, destination, symlinks=True))


def _log(run: Path, rule: str, name: str) -> str:
    return (run / "logs" / rule / f"{name}.log").read_text()


def test_a_forced_pretraining_rerun_ends_with_the_same_weights(
    finished_run: Path, tmp_path: Path, snakemake: Snakemake
) -> None:
    run = copy_of_run(finished_run, tmp_path / "run")
    before = (run / POOLED / "weights.safetensors").read_bytes()
    target = f"{POOLED}/metrics.json"
    result = snakemake(run, TINY, target, "--forcerun", target)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming after epoch 2" in _log(run, "pretrain", "efficientnet_lite0/minilm/pooled")
    assert (run / POOLED / "weights.safetensors").read_bytes() == before


def _longer_pretraining(run: Path) -> Path:
    """The tiny config with more epochs of the paper's Adaptor, so that a kill can land between two."""
    config = yaml.safe_load(TINY.read_text())
    config["pretrain"].update(epochs=LONGER, patience=LONGER, architecture={})
    path = run / "longer.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _epochs_done(run: Path) -> int:
    pointer = run / POOLED / "checkpoint" / "last.json"
    return json.loads(pointer.read_text())["progress"]["epoch"] + 1 if pointer.exists() else 0


def test_snakemake_killed_mid_pretraining_resumes_to_the_uninterrupted_weights(
    finished_run: Path, tmp_path: Path, snakemake: Snakemake, workflow_env: dict[str, str]
) -> None:
    killed, straight = (copy_of_run(finished_run, tmp_path / name) for name in ("killed", "straight"))
    shutil.rmtree(killed / POOLED / "checkpoint")  # the finished 3-epoch run's; this one trains anew
    target = f"{POOLED}/metrics.json"
    command = [
        *(sys.executable, "-m", "snakemake", target, "--snakefile", str(REPO / "Snakefile")),
        *("--cores", "2", "--directory", str(killed), "--configfile", str(_longer_pretraining(killed))),
    ]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    process = subprocess.Popen(command, env=workflow_env, start_new_session=True, **quiet)
    deadline = time.monotonic() + 300
    while _epochs_done(killed) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)  # Snakemake and its job, as a lost node or an OOM kill would
    process.wait()
    done = _epochs_done(killed)
    assert 3 <= done < LONGER, f"not killed mid-run ({done} of {LONGER} epochs)"

    # as a user must after a kill -9: release Snakemake's lock, then rerun what is incomplete
    assert snakemake(killed, killed / "longer.yaml", "--unlock").returncode == 0
    resumed = snakemake(killed, killed / "longer.yaml", target, "--rerun-incomplete")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming after epoch {done - 1}" in _log(killed, "pretrain", "efficientnet_lite0/minilm/pooled")
    uninterrupted = snakemake(straight, _longer_pretraining(straight), target)
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    for name in ("weights.safetensors", "config.json"):
        assert (killed / POOLED / name).read_bytes() == (straight / POOLED / name).read_bytes()


def test_a_cell_on_a_damaged_cache_fails_naming_the_file_and_rows(
    finished_run: Path, tmp_path: Path, snakemake: Snakemake
) -> None:
    run = copy_of_run(finished_run, tmp_path / "run")
    shard = run / "results/cache/rsna/image/efficientnet_lite0.zarr/embeddings/c/1/0"
    data = bytearray(shard.read_bytes())
    data[100] ^= 0xFF
    shard.write_bytes(bytes(data))
    result = snakemake(run, TINY, CELL, "--forcerun", CELL)
    assert result.returncode != 0
    log = _log(run, "evaluate_classification", "rsna/frozen/efficientnet_lite0/none/0")  # one log per seed
    assert f"{shard.relative_to(run)}: embeddings rows 32-63 are corrupt" in log
    assert "Traceback" not in log


def test_a_cell_on_a_cache_with_deleted_shards_fails_instead_of_reading_zeros(
    finished_run: Path, tmp_path: Path, snakemake: Snakemake
) -> None:
    run = copy_of_run(finished_run, tmp_path / "run")
    shard = run / "results/cache/rsna/image/efficientnet_lite0.zarr/embeddings/c/2/0"
    shard.unlink()
    result = snakemake(run, TINY, CELL, "--forcerun", CELL)
    assert result.returncode != 0
    log = _log(run, "evaluate_classification", "rsna/frozen/efficientnet_lite0/none/0")  # one log per seed
    assert f"{shard.relative_to(run)}: embeddings rows 64-79 are missing (file deleted)" in log


def test_shell_syntax_in_a_dataset_root_stays_a_path(tmp_path: Path, snakemake: Snakemake) -> None:
    root = "data/rsna $(touch INJECTED) `touch INJECTED`; touch INJECTED; it's"
    config = yaml.safe_load(TINY.read_text())
    config["datasets"] = {"rsna": {"reader": "rsna", "root": root, "demo": True}}
    config["demo"]["sizes"] = {"rsna": 12}
    config["pretrain"]["dataset"] = "rsna"
    config["embed"]["tokens"] = ["rsna"]
    path = tmp_path / "odd.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, path, "results/manifests/rsna.parquet")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / root / "stage_2_train_labels.csv").exists()
    assert not list(tmp_path.rglob("INJECTED")), "a shell command in the root ran"


def test_embedding_logs_its_progress_with_rate_and_eta(finished_run: Path) -> None:
    log = _log(finished_run, "embed_part", "mimic/image/efficientnet_lite0/0")
    progress = [line for line in log.splitlines() if "adaptor.progress" in line]
    assert progress and "efficientnet_lite0 part 1/2: 64 / 64 samples" in progress[-1]
    assert "samples/s, ETA 0 s" in progress[-1]
    assert "pre-training:" in _log(finished_run, "pretrain", "efficientnet_lite0/minilm/pooled")
