"""The tiny DAG end to end with every file in S3 object storage, against a local S3 server (moto's:
no MinIO server ships on PyPI or Debian), compared with a plain local run. Prints JSON.

Each run starts from an empty folder; the S3 run reads and writes through
snakemake-storage-plugin-s3 (``--default-storage-provider s3``). The result tables are read back
from the bucket and compared with the local run's, timing columns aside.

    python benchmarks/object_storage_run.py
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
from pathlib import Path

import boto3
import polars as pl

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "workflow" / "tiny.yaml"
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


def snakemake(workdir: Path, *args: str) -> float:
    """Seconds the tiny DAG takes in ``workdir``; fails loudly if it does not finish."""
    env = os.environ | CREDENTIALS | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
    ]
    start = time.monotonic()
    result = subprocess.run(
        [*command, "--configfile", str(TINY), "--cores", "2", *args], capture_output=True, text=True, env=env
    )
    if result.returncode != 0:
        sys.exit(result.stdout[-3000:] + result.stderr[-3000:])
    return round(time.monotonic() - start, 1)


def without_timing(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop([c for c in frame.columns if c in TIMING or c.startswith("stage_seconds/")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bucket", default="adaptor")
    args = parser.parse_args()
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
        client = boto3.client(
            "s3", endpoint_url=endpoint, **{k.lower(): v for k, v in CREDENTIALS.items() if "KEY" in k}
        )
        for _ in range(60):
            try:
                client.create_bucket(Bucket=args.bucket)
                break
            except Exception:
                time.sleep(0.5)
        with tempfile.TemporaryDirectory() as scratch:
            local, remote = Path(scratch) / "local", Path(scratch) / "s3"
            local.mkdir()
            remote.mkdir()
            seconds = {"local": snakemake(local)}
            seconds["s3"] = snakemake(
                remote,
                *("--default-storage-provider", "s3", "--default-storage-prefix", f"s3://{args.bucket}/run"),
                *("--storage-s3-endpoint-url", endpoint),
            )
            objects = client.list_objects_v2(Bucket=args.bucket, Prefix="run/")["KeyCount"]
            equal = {}
            for name in TABLES:
                body = client.get_object(Bucket=args.bucket, Key=f"run/results/tables/{name}.parquet")["Body"]
                ours = pl.read_parquet(io.BytesIO(body.read()))
                theirs = pl.read_parquet(local / "results" / "tables" / f"{name}.parquet")
                equal[name] = without_timing(ours).equals(without_timing(theirs))
            left_local = sorted(
                str(p.relative_to(remote)) for p in (remote / "results").rglob("*") if p.is_file()
            )
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "objects_in_bucket": objects,
                "tables_equal": equal,
                "results_left_local": left_local,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
