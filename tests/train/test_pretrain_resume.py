"""Kill a real pre-training process between (or during) epochs, restart it, and end bit-for-bit equal."""

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from adaptor.cache.store import Layout, write_all

EPOCHS = 4
SCRIPT = f"""
import logging
import sys
from pathlib import Path

import polars as pl
import torch

from adaptor.cache.store import open_cache
from adaptor.train.pretrain import PretrainSettings, pretrain

torch.set_num_threads(1)
logging.basicConfig(level=logging.INFO)
root, out = Path(sys.argv[1]), Path(sys.argv[2])
settings = PretrainSettings(epochs={EPOCHS}, batch_size=16, lr=3e-4, patience=10)
pretrain(pl.read_parquet(root / "manifest.parquet"), open_cache(root / "img.zarr"),
         open_cache(root / "txt.zarr"), settings, out)
"""


def _run(root: Path, out: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(root), str(root / out)], stderr=subprocess.PIPE
    )


def _epochs_done(out: Path) -> int:
    pointer = out / "checkpoint" / "last.json"
    return json.loads(pointer.read_text())["progress"]["epoch"] + 1 if pointer.exists() else 0


def test_killed_pretraining_resumes_to_the_same_weights(tmp_path: Path, kill_when: Callable) -> None:
    rng = np.random.default_rng(0)
    n = 480
    latent = rng.normal(size=(n, 8))
    ids = [f"s{i}" for i in range(n)]
    for name, width in (("img", 24), ("txt", 16)):
        values = latent @ rng.normal(size=(8, width)) + 0.1 * rng.normal(size=(n, width))
        write_all(tmp_path / f"{name}.zarr", ids, values, {"m": name}, Layout(dim=width, dtype="float32"))
    split = ["val" if i % 6 == 0 else "train" for i in range(n)]
    pl.DataFrame({"id": ids, "split": split}).write_parquet(tmp_path / "manifest.parquet")

    kill_when(_run(tmp_path, "killed"), lambda: _epochs_done(tmp_path / "killed") >= 2)
    done = _epochs_done(tmp_path / "killed")
    assert 2 <= done < EPOCHS, f"could not interrupt mid-run ({done} of {EPOCHS} epochs done)"

    resumed, straight = _run(tmp_path, "killed"), _run(tmp_path, "straight")
    for process in (resumed, straight):
        assert process.wait() == 0, process.stderr.read()[-2000:]
    assert f"resuming after epoch {done - 1}" in resumed.stderr.read().decode()
    for name in ("weights.safetensors", "config.json"):
        assert (tmp_path / "killed" / name).read_bytes() == (tmp_path / "straight" / name).read_bytes()
    first, second = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("killed", "straight"))
    assert first["history"] == second["history"] and first["retrieval"] == second["retrieval"]
