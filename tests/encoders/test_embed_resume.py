"""Kill a real embedding process mid-run, rerun it, and get the uninterrupted cache value for value."""

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import zarr

from adaptor.cache.store import open_cache
from adaptor.data import manifest
from adaptor.data.demo.render import render
from adaptor.data.demo.writers import _save
from adaptor.errors import CacheMismatch

REPO = Path(__file__).resolve().parents[2]
SHARDS = 10


def _command(tmp_path: Path, out: str) -> list[str]:
    spec = {
        "kind": "timm",
        "model": "vit_tiny_patch16_224",  # random weights: ~20 images/s on one thread, slow enough to kill
        "weights": "random",
        "preprocess": {"resize": 224, "crop": 224},
        "batch_size": 3,
    }
    return [
        *(sys.executable, "-m", "adaptor", "embed", "--manifest", str(tmp_path / "m.parquet")),
        *("--encoder", "vit", "--modality", "image", "--spec", json.dumps(spec)),
        *("--settings", json.dumps({"shard_rows": 6, "chunk_rows": 3}), "--threads", "1", "--workers", "0"),
        *("--out", str(tmp_path / out), "--rejects", str(tmp_path / f"{out}.rejects.parquet")),
    ]


def _done(path: Path) -> int:
    """Shards marked done, read through Zarr (the chunk folder also holds in-flight ``.partial`` files)."""
    if not (path / "done" / "zarr.json").exists():
        return 0
    return int(zarr.open_array(path / "done", mode="r")[:].sum())


def test_killed_embedding_resumes_to_an_identical_cache(tmp_path: Path, kill_when: Callable) -> None:
    paths = []
    for index in range(6 * SHARDS):
        paths.append(str(tmp_path / f"{index}.png"))
        _save(Path(paths[-1]), render([], seed=index, size=64).pixels)
    frame = pl.DataFrame({"id": [f"s{i}" for i in range(len(paths))], "path": paths})
    manifest.write(frame, manifest.ManifestInfo("demo", "pretrain", ()), tmp_path / "m.parquet")

    process = subprocess.Popen(_command(tmp_path, "c.zarr"), cwd=REPO, stderr=subprocess.PIPE, text=True)
    kill_when(process, lambda: _done(tmp_path / "c.zarr") >= 2)
    written = _done(tmp_path / "c.zarr")
    assert 2 <= written < SHARDS, f"could not interrupt mid-run ({written} of {SHARDS} shards written)"
    with pytest.raises(CacheMismatch, match="unfinished"):
        open_cache(tmp_path / "c.zarr")

    resumed = subprocess.run(_command(tmp_path, "c.zarr"), cwd=REPO, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"'already_done': {written}" in resumed.stderr
    straight = subprocess.run(_command(tmp_path, "ref.zarr"), cwd=REPO, capture_output=True, text=True)
    assert straight.returncode == 0, straight.stderr[-2000:]

    first, second = zarr.open_group(tmp_path / "c.zarr"), zarr.open_group(tmp_path / "ref.zarr")
    for name in ("ids", "embeddings", "reasons", "done"):
        np.testing.assert_array_equal(first[name][:], second[name][:], err_msg=name)
    assert first.attrs["key"] == second.attrs["key"]
    assert open_cache(tmp_path / "c.zarr").embeddings.any()
