from pathlib import Path

import numpy as np
import pytest

from adaptor.cache.store import CacheMismatch, create, join, open_cache


def _cache(path: Path, ids: list[str], values: np.ndarray, identity: dict) -> None:
    _, writer = create(path, ids, values.shape[1], identity, shard_rows=4, chunk_rows=2, dtype="float32")
    for row in values:
        writer.append(row[None])
    writer.close()


def test_rows_are_written_whole_shards_at_a_time(tmp_path: Path) -> None:
    group, writer = create(
        tmp_path / "c.zarr", [str(i) for i in range(10)], 3, {"a": 1}, shard_rows=4, chunk_rows=2
    )
    assert group["embeddings"].shards == (4, 3)
    writes: list[tuple[int, int]] = []
    original = writer.array.__setitem__
    writer.array = type(
        "Spy",
        (),
        {
            "__setitem__": lambda s, k, v: (writes.append((k.start, k.stop)), original(k, v)),
            "shape": writer.array.shape,
        },
    )()
    for _ in range(10):
        writer.append(np.ones((1, 3)))
    writer.close()
    assert writes == [(0, 4), (4, 8), (8, 10)]


def test_incomplete_cache_is_an_error(tmp_path: Path) -> None:
    _, writer = create(tmp_path / "c.zarr", ["a", "b"], 2, {})
    writer.append(np.ones((1, 2)))
    with pytest.raises(RuntimeError, match="1 of 2"):
        writer.close()


def test_stale_cache_is_refused(tmp_path: Path) -> None:
    _cache(tmp_path / "c.zarr", ["a", "b"], np.eye(2), {"encoder": "x", "crop": 224})
    key = open_cache(tmp_path / "c.zarr").attrs["key"]
    assert open_cache(tmp_path / "c.zarr", expected_key=key).ids.tolist() == ["a", "b"]
    with pytest.raises(CacheMismatch, match="Re-run"):
        open_cache(tmp_path / "c.zarr", expected_key="0" * 16)


def test_join_is_by_id_and_checked(tmp_path: Path) -> None:
    _cache(tmp_path / "img.zarr", ["a", "b", "c"], np.array([[1.0], [2.0], [3.0]]), {"m": "img"})
    _cache(tmp_path / "txt.zarr", ["c", "a", "b"], np.array([[30.0], [10.0], [20.0]]), {"m": "txt"})
    image, text = join(open_cache(tmp_path / "img.zarr"), open_cache(tmp_path / "txt.zarr"), ["b", "c"])
    assert image[:, 0].tolist() == [2.0, 3.0] and text[:, 0].tolist() == [20.0, 30.0]
    _cache(tmp_path / "other.zarr", ["a", "x"], np.ones((2, 1)), {"m": "txt"})
    with pytest.raises(CacheMismatch, match="not in the cache"):
        join(open_cache(tmp_path / "img.zarr"), open_cache(tmp_path / "other.zarr"), ["a", "b"])
