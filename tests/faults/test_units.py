"""Faults caught inside the package: lost output weights, doubled results, a full disk, silence."""

from __future__ import annotations

import logging
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from adaptor import progress
from adaptor.cache.store import Layout, open_cache, write_all
from adaptor.results import tables
from adaptor.train.pretrain import PretrainSettings, pretrain

FIXTURES = Path(__file__).parents[1] / "fixtures"


def _pairs(tmp_path: Path, n: int = 64) -> tuple[pl.DataFrame, Path, Path]:
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(n, 4))
    ids = [f"s{i}" for i in range(n)]
    for name, width in (("img", 12), ("txt", 8)):
        values = latent @ rng.normal(size=(4, width)) + 0.1 * rng.normal(size=(n, width))
        write_all(tmp_path / f"{name}.zarr", ids, values, {"m": name}, Layout(dim=width, dtype="float32"))
    manifest = pl.DataFrame({"id": ids, "split": ["val" if i % 4 == 0 else "train" for i in range(n)]})
    return manifest, tmp_path / "img.zarr", tmp_path / "txt.zarr"


def test_pretraining_rewrites_lost_weights_from_its_checkpoint(tmp_path: Path) -> None:
    manifest, image, text = _pairs(tmp_path)
    small = {"width": 64, "heads": 4, "ffn": 128}  # resuming does not depend on the size
    settings = PretrainSettings(epochs=4, batch_size=8, lr=3e-4, patience=10, architecture=small)
    run = tmp_path / "run"
    pretrain(manifest, open_cache(image), open_cache(text), settings, run)
    weights = (run / "weights.safetensors").read_bytes()
    (run / "weights.safetensors").unlink()  # what Snakemake does to the outputs of a forced job
    metrics = pretrain(manifest, open_cache(image), open_cache(text), settings, run)
    assert (run / "weights.safetensors").read_bytes() == weights
    assert metrics["epochs_run"] == 4  # resumed after the last epoch: nothing trained twice
    assert sorted(p.name for p in (run / "checkpoint").iterdir()) == [
        f"best-{metrics['best_epoch']:04d}.safetensors",
        "last.json",
        "state-0003.safetensors",
    ]


def _run_file(path: Path, seed: int) -> Path:
    identity = {"dataset": "rsna", "task": "binary", "method": "frozen", "protocol": "strict"}
    pl.DataFrame(
        identity
        | {"image_encoder": "e", "text_encoder": None, "fraction": 1.0, "seed": seed, "metric": "auroc"}
        | {"value": 0.7, "ci_low": 0.6, "ci_high": 0.8, "n_train": 10, "n_test": 5}
    ).write_parquet(path)
    return path


def test_a_result_file_given_twice_is_refused(tmp_path: Path) -> None:
    cell = _run_file(tmp_path / "0.parquet", 0)
    with pytest.raises(ValueError, match=r"listed more than once \(each would count twice\)"):
        tables.runs([cell, _run_file(tmp_path / "1.parquet", 1), cell])


def test_two_results_for_one_cell_are_refused(tmp_path: Path) -> None:
    first, copy = _run_file(tmp_path / "a.parquet", 0), _run_file(tmp_path / "b.parquet", 0)
    with pytest.raises(ValueError, match=r"2 result rows share their \(cell, metric\).*'seed': 0"):
        tables.runs([first, copy])


def test_a_full_disk_is_one_sentence_naming_the_outputs(tmp_path: Path) -> None:
    def small_files() -> None:  # writes past 1 KiB fail with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))

    command = [
        *(sys.executable, "-m", "adaptor", "prepare", "--dataset", "rsna", "--on-error", "skip"),
        *("--settings", f'{{"reader": "rsna", "root": "{FIXTURES / "rsna"}"}}'),
        *("--out", str(tmp_path / "m.parquet"), "--rejects", str(tmp_path / "r.parquet")),
    ]
    result = subprocess.run(command, capture_output=True, text=True, preexec_fn=small_files, check=False)
    assert result.returncode == 1
    assert f"cannot write its outputs ({tmp_path / 'm.parquet'}, {tmp_path / 'r.parquet'})" in result.stderr
    assert "(errno 27). Free space" in result.stderr and "Traceback" not in result.stderr


def test_long_steps_log_done_total_rate_and_eta(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="adaptor.progress"):
        counter = progress.Progress(10, "embedding", "samples", every_s=0.0)
        for _ in range(5):
            counter.update(2)
        counter.close()
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 5 and lines[0].startswith("embedding: 2 / 10 samples,")
    assert lines[-1].startswith("embedding: 10 / 10 samples,") and lines[-1].endswith("ETA 0 s")


def test_long_steps_draw_a_bar_in_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    for _ in progress.progress(range(3), 3, "reports", "reports"):
        pass
    assert "reports: 100%" in capsys.readouterr().err
