"""Compare two runs' result tables cell by cell, as JSON: which cells each has, and how far every
value and interval bound moved, next to the spread of the value across seeds.

    python benchmarks/compare_tables.py --before OLD/results/tables --after results/tables

A change that should not alter the arithmetic shows max_abs_difference 0; one that may (another
thread count, another batching) should move no (dataset, method, fraction, metric) mean over seeds by
more than the seeds' standard deviation.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import polars as pl

CELL = ["dataset", "method", "image_encoder", "text_encoder", "fraction", "seed", "metric"]
MEASURED = ["value", "ci_low", "ci_high"]


def compare(before: pl.DataFrame, after: pl.DataFrame) -> dict[str, object]:
    """Cells present in each table, the largest change of each measured column in the shared ones, and
    how far each mean over seeds moved against the seeds' spread."""
    keys = [c for c in CELL if c in before.columns and c in after.columns]
    joined = before.select(*keys, *MEASURED).join(
        after.select(*keys, *MEASURED), on=keys, how="inner", suffix="_after", nulls_equal=True
    )
    moved = {
        column: float(joined.select((pl.col(f"{column}_after") - pl.col(column)).abs().max()).item() or 0.0)
        for column in MEASURED
    }
    group = [k for k in keys if k != "seed"]

    def over_seeds(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.group_by(group).agg(
            pl.col("value").mean().alias("mean"), pl.col("value").std().alias("std")
        )

    shifts = (
        over_seeds(before)
        .join(over_seeds(after), on=group, suffix="_after", nulls_equal=True)
        .with_columns(
            (pl.col("mean_after") - pl.col("mean")).abs().alias("shift"),
            pl.max_horizontal(pl.col("std").fill_null(0), pl.col("std_after").fill_null(0)).alias("spread"),
        )
    )
    return {
        "rows_before": before.height,
        "rows_after": after.height,
        "rows_in_both": joined.height,
        "only_before": before.height - joined.height,
        "only_after": after.height - joined.height,
        "max_abs_difference": moved,
        "largest_shift_of_seed_mean": shifts["shift"].max(),
        "groups_whose_mean_moved_more_than_a_seed_std": shifts.filter(
            pl.col("shift") > pl.col("spread")
        ).height,
        "groups": shifts.height,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", required=True, help="a results/tables folder")
    parser.add_argument("--after", required=True, help="a results/tables folder")
    parser.add_argument("--tables", nargs="+", default=["classification", "segmentation", "zeroshot"])
    args = parser.parse_args()
    result = {
        name: compare(
            pl.read_parquet(Path(args.before) / f"{name}.parquet"),
            pl.read_parquet(Path(args.after) / f"{name}.parquet"),
        )
        for name in args.tables
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
