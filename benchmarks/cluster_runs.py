"""The tiny DAG end to end, from empty folders, three ways, each compared with a plain local run.
Prints JSON.

- ``stand_in``: Snakemake's cluster-generic executor submits every job to the tests' stand-in
  scheduler (``tests/workflow/fake_sbatch.py``): each job a separate background process started by
  its own Snakemake, sharing only the filesystem, as on a SLURM cluster.
- ``s3``: every file in S3 object storage through snakemake-storage-plugin-s3
  (``--default-storage-provider s3``), against a local S3 server (moto's: no MinIO server ships on
  PyPI or Debian). Its tables are read back from the bucket.

The tests run a part of the stand-in run and plan the S3 one; the whole of both would take about 5
minutes of CI.

    python benchmarks/cluster_runs.py [--runs stand_in s3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import polars as pl

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "workflow" / "tiny.yaml"
FAKE_SBATCH = REPO / "tests" / "workflow" / "fake_sbatch.py"
TABLES = (
    "classification",
    "segmentation",
    "zeroshot",
    "pretraining",
    "retrieval",
    "summary",
    "pretraining_curves",
)
TIMING = ("wall_seconds", "pretrain_seconds", "train_samples_per_second")
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}
BUCKET = "adaptor"


def snakemake(workdir: Path, *args: str, env: dict[str, str] | None = None) -> float:
    """Seconds the tiny DAG takes in a new folder ``workdir``; fails loudly if it does not finish."""
    workdir.mkdir()
    path = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
    command += ["--directory", str(workdir), "--configfile", str(TINY), *args]
    start = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=os.environ | path | (env or {}))
    if result.returncode != 0:
        sys.exit(result.stdout[-3000:] + result.stderr[-3000:])
    return round(time.monotonic() - start, 1)


def without_timing(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop([c for c in frame.columns if c in TIMING or c.startswith("stage_seconds/")])


def tables_equal(read: dict[str, pl.DataFrame], local: Path) -> dict[str, bool]:
    return {
        name: without_timing(frame).equals(
            without_timing(pl.read_parquet(local / "results" / "tables" / f"{name}.parquet"))
        )
        for name, frame in read.items()
    }


def stand_in_run(scratch: Path, local: Path) -> dict:
    state = scratch / "scheduler"
    submit, status = (f"{sys.executable} {FAKE_SBATCH} {verb}" for verb in ("submit", "status"))
    seconds = snakemake(
        scratch / "stand_in",
        *("--executor", "cluster-generic", "--jobs", "2"),
        *("--cluster-generic-submit-cmd", submit, "--cluster-generic-status-cmd", status),
        *("--latency-wait", "5", "--seconds-between-status-checks", "1"),
        env={"FAKE_SCHEDULER_STATE": str(state)},
    )
    exits = [f.read_text().strip() for f in state.glob("*.rc")]
    tables = {
        name: pl.read_parquet(scratch / "stand_in" / f"results/tables/{name}.parquet") for name in TABLES
    }
    return {
        "seconds": seconds,
        "jobs_submitted": len(exits),
        "jobs_succeeded": exits.count("0"),
        "tables_equal": tables_equal(tables, local),
    }


@contextmanager
def s3_server() -> Iterator[tuple[str, object]]:
    """A local moto S3 server with an empty bucket: (endpoint, boto3 client)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        keys = {k.lower(): v for k, v in CREDENTIALS.items() if "KEY" in k}
        client = boto3.client("s3", endpoint_url=endpoint, **keys)
        for _ in range(60):
            try:
                client.create_bucket(Bucket=BUCKET)
                break
            except Exception:
                time.sleep(0.5)
        yield endpoint, client
    finally:
        server.terminate()
        server.wait(timeout=10)


def s3_run(scratch: Path, local: Path) -> dict:
    remote = scratch / "s3"
    with s3_server() as (endpoint, client):
        seconds = snakemake(
            remote,
            *("--cores", "2", "--default-storage-provider", "s3"),
            *("--default-storage-prefix", f"s3://{BUCKET}/run", "--storage-s3-endpoint-url", endpoint),
            env=CREDENTIALS,
        )
        objects = client.list_objects_v2(Bucket=BUCKET, Prefix="run/")["KeyCount"]
        tables = {}
        for name in TABLES:
            body = client.get_object(Bucket=BUCKET, Key=f"run/results/tables/{name}.parquet")["Body"]
            tables[name] = pl.read_parquet(io.BytesIO(body.read()))
    left_local = sorted(str(p.relative_to(remote)) for p in (remote / "results").rglob("*") if p.is_file())
    return {
        "seconds": seconds,
        "objects_in_bucket": objects,
        "tables_equal": tables_equal(tables, local),
        "results_left_local": left_local,
    }


RUNS = {"stand_in": stand_in_run, "s3": s3_run}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", nargs="+", choices=sorted(RUNS), default=list(RUNS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        report: dict = {"local": {"seconds": snakemake(scratch / "local", "--cores", "2")}}
        for name in args.runs:
            report[name] = RUNS[name](scratch, scratch / "local")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
