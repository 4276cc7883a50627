"""Print the wall time of a finished DAG run, stage by stage, as JSON.

Run after `snakemake --cores N`: it reads results/tables/wall_time.parquet (from the rules'
`benchmark:` files). `--log` adds the end-to-end time from Snakemake's latest log.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import datetime
from pathlib import Path

import polars as pl


def end_to_end_seconds(log: Path) -> float | None:
    stamps = re.findall(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]", log.read_text(), flags=re.MULTILINE)
    if len(stamps) < 2:
        return None
    parse = [datetime.strptime(" ".join(s.split()), "%a %b %d %H:%M:%S %Y") for s in (stamps[0], stamps[-1])]
    return (parse[1] - parse[0]).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--table", default="results/tables/wall_time.parquet")
    parser.add_argument("--log", help="a .snakemake/log/*.snakemake.log file")
    args = parser.parse_args()
    wall = pl.read_parquet(args.table)
    by_stage = wall.group_by("stage").agg(pl.col("seconds").sum().round(1), pl.len().alias("jobs"))
    stages = by_stage.sort("stage")
    result: dict[str, object] = {
        "stages": {stage: {"seconds": seconds, "jobs": jobs} for stage, seconds, jobs in stages.iter_rows()},
        "sum_of_job_seconds": round(wall["seconds"].sum(), 1),
    }
    if args.log:
        result["end_to_end_seconds"] = end_to_end_seconds(Path(args.log))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
