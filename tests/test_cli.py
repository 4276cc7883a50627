"""The command-line stages: samples rejected at embedding stay out of every later stage."""

from pathlib import Path

import polars as pl

from adaptor import cli
from adaptor.data import manifest
from adaptor.data.manifest import Rejects
from adaptor.data.prepare import prepare


def test_subsets_leave_out_samples_rejected_at_embedding(tmp_path: Path, demo_root: Path) -> None:
    frame, info, _ = prepare("rsna", "rsna", demo_root / "rsna", {})
    manifest.write(frame, info, tmp_path / "m.parquet")
    train = frame.filter(pl.col("split") == "train")["id"].to_list()
    rejects = Rejects("rsna")
    for sample in train[:2]:
        rejects.add("x.dcm", None, sample, "cannot decode image")
    rejects.frame().write_parquet(tmp_path / "r.parquet")
    Rejects("rsna").frame().write_parquet(tmp_path / "none.parquet")
    out = tmp_path / "subsets.parquet"
    cli.main(
        [
            *("subsets", "--manifest", str(tmp_path / "m.parquet"), "--out", str(out)),
            *("--fractions", "0.5", "1.0", "--seeds", "0"),
            *("--exclude", str(tmp_path / "r.parquet"), str(tmp_path / "none.parquet")),
            *("--prepare-rejects", str(tmp_path / "none.parquet")),
        ]
    )
    subsets = pl.read_parquet(out)
    assert not set(train[:2]) & set(subsets["id"])
    assert subsets.filter(pl.col("fraction") == 1.0).height == len(train) - 2
