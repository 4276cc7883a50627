"""The U-Net's stage maps cached (`embed.stages`) against computed inside each segmentation job, on a
finished demo run. Prints JSON.

It copies the demo folder, reruns it there with the segmentation sets left out of `embed.stages`
(their image caches re-embedded without maps, and every segmentation job computing its own), and
compares, per variant: the seconds of the segmentation and embedding jobs, the bytes of the
segmentation sets' image caches, and the largest difference between the two variants' Dice values.

    snakemake --cores 2 && python benchmarks/stage_maps.py --demo-dir .
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import yaml

IN_JOB = {"embed": {"stages": []}, "evaluate": {"segmentation": {"decoder": {"kind": "unet"}}}}


def _bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def measure(run: Path, datasets: list[str]) -> dict[str, object]:
    """Job seconds by stage (from the rules' benchmark files) and the segmentation caches' size."""
    wall = pl.read_parquet(run / "results" / "tables" / "wall_time.parquet")
    on_sets = wall.filter(pl.col("job").str.contains("|".join(f"/{name}/" for name in datasets)))
    seconds = on_sets.group_by("stage").agg(pl.col("seconds").sum().round(1), pl.len().alias("jobs"))
    caches = [path for name in datasets for path in (run / "results/cache" / name / "image").glob("*.zarr")]
    by_stage = seconds.sort("stage").iter_rows()
    return {
        "seconds_by_stage": {stage: {"seconds": total, "jobs": jobs} for stage, total, jobs in by_stage},
        "image_cache_bytes": sum(_bytes(path) for path in caches),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--demo-dir", type=Path, required=True, help="a finished demo run (its results/)")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    demo = args.demo_dir.resolve()
    config = yaml.safe_load((demo / "config" / "demo.yaml").read_text())
    datasets = config["evaluate"]["segmentation"]["datasets"]
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "in_job"
        shutil.copytree(demo, copy, symlinks=True, ignore=shutil.ignore_patterns(".venv"))
        overlay = copy / "in_job.yaml"
        overlay.write_text(yaml.safe_dump(IN_JOB))
        path = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        command = [sys.executable, "-m", "snakemake", "--cores", str(args.cores)]
        command += ["--configfile", "config/demo.yaml", str(overlay)]
        start = time.monotonic()
        result = subprocess.run(command, cwd=copy, capture_output=True, text=True, env=os.environ | path)
        if result.returncode != 0:
            sys.exit(result.stdout[-3000:] + result.stderr[-3000:])
        rerun_seconds = round(time.monotonic() - start, 1)
        dice = [pl.read_parquet(run / "results" / "tables" / "segmentation.parquet") for run in (demo, copy)]
        keys = ["dataset", "method", "image_encoder", "fraction", "seed", "metric"]
        cached, in_job = (frame.select(*keys, "value") for frame in dice)
        joined = cached.join(in_job, on=keys, suffix="_in_job")
        report = {
            "cached": measure(demo, datasets),
            "in_job": measure(copy, datasets) | {"rerun_seconds": rerun_seconds},
            "dice_cells_compared": len(joined),
            "dice_max_abs_difference": float((joined["value"] - joined["value_in_job"]).abs().max()),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
