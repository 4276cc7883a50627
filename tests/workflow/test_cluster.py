"""The DAG on a (stand-in) cluster: Snakemake's cluster-generic executor submits each job to
``fake_sbatch.py``, which runs it as a separate background process, and the tables come out as the
plain local run's; and the SLURM and Kubernetes profiles' dry runs, with GPUs asked for by the GPU
rules only (Kubernetes through S3 object storage on a local S3 server, moto)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[2]
TINY = Path(__file__).with_name("tiny.yaml")
FAKE_SBATCH = Path(__file__).with_name("fake_sbatch.py")
GPU_RULES = {"embed", "embed_part", "pretrain", "evaluate_segmentation"}
# Columns that hold seconds or rates: they differ between any two runs.
TIMING = ("wall_seconds", "pretrain_seconds", "train_samples_per_second")


def _snakemake(workdir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
    ]
    return subprocess.run([*command, *args], capture_output=True, text=True, env=env, check=False)


def _resources_by_rule(dry_run: str) -> dict[str, str]:
    """Each scheduled rule's resources line, from a dry run's job listing."""
    found, rule = {}, None
    for line in dry_run.splitlines():
        if line.startswith(("rule ", "localrule ")):
            rule = line.split()[1].rstrip(":")
        elif line.strip().startswith("resources:") and rule:
            found[rule] = line.strip()
    return found


def _gpu_requests_only_on_gpu_rules(dry_run: str) -> None:
    by_rule = _resources_by_rule(dry_run)
    assert GPU_RULES & set(by_rule) and len(by_rule) > len(GPU_RULES & set(by_rule))
    for rule, resources in by_rule.items():
        asks = "gpu=1" in resources and "nvidia_gpu=1" in resources and "gpu_manufacturer=nvidia" in resources
        assert asks == (rule in GPU_RULES), (rule, resources)


@pytest.mark.slow
def test_the_dag_on_a_stand_in_scheduler_gives_the_local_runs_tables(
    finished_run: Path, tmp_path: Path, workflow_env: dict[str, str]
) -> None:
    """The pooled Adaptor's chain (pre-training, its features, its evaluation cells), then the tables
    and figures, rerun as separate submitted jobs; the rest is the finished run's. Running the whole
    DAG this way takes 5 minutes, which CI cannot spare: each job pays for its own process."""
    workdir = tmp_path / "cluster"
    shutil.copytree(finished_run, workdir, symlinks=True)
    removed = [
        *workdir.glob("results/adaptors/*/*/pooled"),
        *workdir.glob("results/cache/*/adaptor/*/*/pooled.zarr"),
        *workdir.glob("results/runs/*/*/adaptor"),
        *(workdir / "results" / name for name in ("tables", "figures", "report_tables")),
    ]
    for path in removed:
        shutil.rmtree(path)
    state = tmp_path / "scheduler"
    env = workflow_env | {"FAKE_SCHEDULER_STATE": str(state)}
    submit, status = (f"{sys.executable} {FAKE_SBATCH} {verb}" for verb in ("submit", "status"))
    result = _snakemake(
        workdir,
        env,
        *("--configfile", str(TINY), "--executor", "cluster-generic", "--jobs", "2"),
        *("--cluster-generic-submit-cmd", submit, "--cluster-generic-status-cmd", status),
        *("--latency-wait", "5", "--rerun-triggers", "mtime", "--seconds-between-status-checks", "1"),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    submitted = sorted(state.glob("*.rc"))
    # pretrain, the features of RSNA, 3 adaptor cells, report, figures: one process each
    assert len(submitted) == 7 and all(f.read_text().strip() == "0" for f in submitted)
    for name in ("classification", "segmentation", "zeroshot", "pretraining", "retrieval", "summary"):
        ours = pl.read_parquet(workdir / f"results/tables/{name}.parquet")
        local = pl.read_parquet(finished_run / f"results/tables/{name}.parquet")
        timing = [c for c in local.columns if c in TIMING or c.startswith("stage_seconds/")]
        assert ours.drop(timing).equals(local.drop(timing)), name


def test_the_slurm_profile_asks_for_gpus_on_the_gpu_rules_only(
    workflow_env: dict[str, str], tmp_path: Path
) -> None:
    result = _snakemake(
        _repository_like(tmp_path),
        workflow_env,
        *("-n", "--configfile", str(TINY), "--workflow-profile", "workflow/profiles/slurm"),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    _gpu_requests_only_on_gpu_rules(result.stdout)
    by_rule = _resources_by_rule(result.stdout)
    assert (
        "slurm_partition=gpu" in by_rule["pretrain"]
        and "slurm_partition=cpu" in by_rule["evaluate_classification"]
    )
    assert "runtime=" in by_rule["embed_part"] and "mem_mb=16000" in by_rule["pretrain"]


def _repository_like(folder: Path) -> Path:
    """A folder laid out like the repository root, so a dry run leaves the checkout untouched."""
    for name in ("Snakefile", "workflow", "config", "report"):
        (folder / name).symlink_to(REPO / name)
    return folder


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def s3_server(workflow_env: dict[str, str]) -> Iterator[tuple[str, dict[str, str]]]:
    """A local S3 server (moto's; MinIO ships no server on PyPI or Debian) with an empty bucket."""
    import boto3

    port = _free_port()
    env = workflow_env | {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                client = boto3.client(
                    "s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test"
                )
                client.create_bucket(Bucket="adaptor")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield endpoint, env
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_kubernetes_profile_plans_every_file_in_object_storage(
    s3_server: tuple[str, dict[str, str]],
) -> None:
    endpoint, env = s3_server
    result = _snakemake(
        REPO,
        env,
        *("-n", "--configfile", str(TINY), "--workflow-profile", "workflow/profiles/kubernetes"),
        *("--default-storage-prefix", "s3://adaptor/run", "--storage-s3-endpoint-url", endpoint),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    _gpu_requests_only_on_gpu_rules(result.stdout)
    outputs = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("output:")]
    assert outputs and all("s3://adaptor/run/" in line for line in outputs)
