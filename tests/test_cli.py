"""The command-line stages: one seed's subsets are drawn alike alone or with other seeds, and no
encoder's rejects enter the draw, so adding a seed or an encoder leaves every drawn subset as it was."""

from pathlib import Path

import polars as pl
import pytest

from adaptor import cli
from adaptor.data import manifest
from adaptor.data.manifest import Rejects
from adaptor.data.prepare import prepare


@pytest.mark.parametrize("protocol", ["strict", "mgca"])
def test_a_seeds_subsets_are_the_same_drawn_alone(tmp_path: Path, demo_root: Path, protocol: str) -> None:
    frame, info, _ = prepare("rsna", "rsna", demo_root / "rsna", {})
    manifest.write(frame, info, tmp_path / "m.parquet")
    Rejects("rsna").frame().write_parquet(tmp_path / "none.parquet")

    def draw(*seeds: str) -> pl.DataFrame:
        out = tmp_path / f"{'-'.join(seeds)}.parquet"
        cli.main(
            [
                *("subsets", "--manifest", str(tmp_path / "m.parquet"), "--out", str(out)),
                *("--fractions", "0.5", "1.0", "--seeds", *seeds, "--protocol", protocol),
                *("--prepare-rejects", str(tmp_path / "none.parquet"), "--reader", "rsna"),
            ]
        )
        return pl.read_parquet(out)

    together, alone = draw("0", "1"), draw("1")
    assert together.filter(pl.col("seed").ne_missing(0)).equals(alone)  # seed 1 and the held-out splits
    assert together.filter(pl.col("seed") == 0).height > 0


def test_the_gpu_commands_claim_the_gpus_they_were_given(capsys: pytest.CaptureFixture[str]) -> None:
    """The workflow passes each GPU job's `gpu` resource; the command claims that many."""
    from adaptor.cli import parser

    for command in ("embed", "embed-part", "pretrain", "evaluate", "segment"):
        with pytest.raises(SystemExit):
            parser().parse_args([command, "--help"])
        assert "--gpus GPUS" in capsys.readouterr().out, command
