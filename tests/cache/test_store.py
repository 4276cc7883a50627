from pathlib import Path

import numpy as np
import pytest
import zarr

from adaptor.cache import store
from adaptor.cache.store import Layout, open_cache, usable, write_all
from adaptor.errors import CacheMismatch


def _cache(path: Path, ids: list[str], values: np.ndarray, identity: dict) -> None:
    write_all(
        path, ids, values, identity, Layout(dim=values.shape[1], shard_rows=4, chunk_rows=2, dtype="float32")
    )


def test_every_array_is_sharded_alike_and_shards_split_into_parts(tmp_path: Path) -> None:
    layout = Layout(dim=3, shard_rows=4, chunk_rows=2, token_shape=(5, 6), token_mask=True)
    group = store.create(tmp_path / "c.zarr", [str(i) for i in range(10)], layout, {"a": 1})
    assert group["embeddings"].shards == (4, 3) and group["embeddings"].chunks == (2, 3)
    assert group["tokens"].shards == (4, 5, 6) and group["token_mask"].shards == (4, 5)
    assert group["done"].shape == (3,) and group["embeddings"].dtype == np.float16
    assert store.shard_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert [list(store.part_shards(10, p, 3)) for p in range(3)] == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]
    assert [list(store.part_shards(1, p, 2)) for p in range(2)] == [[], [0]]


def test_token_caches_get_smaller_chunks_and_shards() -> None:
    pooled = Layout(dim=768)
    assert (pooled.chunk_size(100_000), pooled.shard_size(100_000)) == (512, 4096)
    vit_b = Layout(dim=768, token_shape=(256, 768))  # 384 KiB a sample in float16
    assert vit_b.chunk_size(100_000) == 42  # <= 16 MiB: one sample's tokens read without 200 MB
    assert vit_b.shard_size(100_000) == 1344  # <= 512 MiB buffered per shard, a multiple of 42


def test_a_cache_is_refused_until_every_shard_is_written(tmp_path: Path) -> None:
    group = store.create(tmp_path / "c.zarr", ["a", "b", "c"], Layout(dim=2, shard_rows=2), {})
    store.write_shard(group, 1, {"embeddings": np.ones((1, 2)), "reasons": np.array([""])})
    assert store.pending(group, range(2)) == [0]
    with pytest.raises(CacheMismatch, match="unfinished"):
        open_cache(tmp_path / "c.zarr")
    with pytest.raises(CacheMismatch, match="1 of 2 shards"):
        store.finalize(tmp_path / "c.zarr")


def test_the_writer_thread_writes_whole_shards_and_reports_its_errors(tmp_path: Path) -> None:
    group = store.create(tmp_path / "c.zarr", ["a", "b", "c"], Layout(dim=2, shard_rows=2), {})
    writer = store.ShardWriter(group)
    writer.put(0, {"embeddings": np.ones((2, 2)), "reasons": np.array(["", "broken"])})
    writer.put(1, {"embeddings": np.full((1, 2), 2.0), "reasons": np.array([""])})
    writer.close()
    assert store.finalize(tmp_path / "c.zarr") == {"b": "broken"}
    cache = open_cache(tmp_path / "c.zarr")
    assert cache.ids.tolist() == ["a", "c"] and cache.embeddings.tolist() == [[1, 1], [2, 2]]
    assert cache.rejected == {"b": "broken"}
    failing = store.ShardWriter(group)
    failing.put(0, {"embeddings": np.ones((5, 2))})
    with pytest.raises(ValueError):
        failing.close()


def test_stale_cache_is_refused_naming_the_difference(tmp_path: Path) -> None:
    identity = {"encoder": "x", "preprocess": {"crop": 224, "resize": 256}}
    _cache(tmp_path / "c.zarr", ["a", "b"], np.eye(2), identity)
    assert open_cache(tmp_path / "c.zarr", expected=identity).ids.tolist() == ["a", "b"]
    stale = {"encoder": "x", "preprocess": {"crop": 192, "resize": 256}}
    with pytest.raises(CacheMismatch, match=r"preprocess\.crop: cache has 224, expected 192"):
        open_cache(tmp_path / "c.zarr", expected=stale)


def test_rows_are_found_by_id_and_checked(tmp_path: Path) -> None:
    _cache(tmp_path / "img.zarr", ["a", "b", "c"], np.array([[1.0], [2.0], [3.0]]), {"m": "img"})
    _cache(tmp_path / "txt.zarr", ["c", "a", "b"], np.array([[30.0], [10.0], [20.0]]), {"m": "txt"})
    image, text = open_cache(tmp_path / "img.zarr"), open_cache(tmp_path / "txt.zarr")
    assert image.embeddings[image.rows(["b", "c"])][:, 0].tolist() == [2.0, 3.0]
    assert text.embeddings[text.rows(["b", "c"])][:, 0].tolist() == [20.0, 30.0]
    _cache(tmp_path / "other.zarr", ["a", "x"], np.ones((2, 1)), {"m": "txt"})
    with pytest.raises(CacheMismatch, match="not in the cache"):
        open_cache(tmp_path / "other.zarr").rows(["a", "b"])
    with pytest.raises(CacheMismatch, match="another manifest"):
        usable(["a", "b"], open_cache(tmp_path / "img.zarr"), open_cache(tmp_path / "other.zarr"))


def test_token_arrays_are_read_by_id(tmp_path: Path) -> None:
    layout = Layout(dim=1, shard_rows=2, chunk_rows=1, dtype="float32", token_shape=(3, 2), token_mask=True)
    group = store.create(tmp_path / "t.zarr", ["a", "b", "c"], layout, {})
    tokens = np.arange(18, dtype=np.float32).reshape(3, 3, 2)
    mask = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1]], dtype=bool)
    for shard, (start, stop) in enumerate(store.shard_bounds(3, 2)):
        arrays = {"tokens": tokens[start:stop], "token_mask": mask[start:stop]}
        store.write_shard(group, shard, arrays | {"embeddings": np.zeros((stop - start, 1))})
    store.finalize(tmp_path / "t.zarr")
    read, read_mask = open_cache(tmp_path / "t.zarr").tokens(["c", "a"])
    np.testing.assert_array_equal(read, tokens[[2, 0]])
    np.testing.assert_array_equal(read_mask, mask[[2, 0]])


def test_a_layout_without_stage_maps_is_stored_as_before_they_existed() -> None:
    """So a cache finished before stage maps keeps its layout key and is resumed, not rebuilt."""
    assert "stage_shapes" not in Layout(dim=3).as_dict()
    assert Layout(dim=3, stage_shapes=((1, 2, 2),)).as_dict()["stage_shapes"] == ((1, 2, 2),)


def test_stage_maps_are_stored_per_stage_read_by_id_and_checked(tmp_path: Path) -> None:
    shapes = ((2, 4, 4), (3, 2, 2))
    layout = Layout(dim=1, shard_rows=2, chunk_rows=1, dtype="float32", stage_shapes=shapes)
    assert layout.stage_bytes() == 4 * (2 * 16 + 3 * 4)
    group = store.create(tmp_path / "s.zarr", ["a", "b", "c"], layout, {})
    maps = [np.arange(3 * np.prod(shape), dtype=np.float32).reshape(3, *shape) for shape in shapes]
    for shard, (start, stop) in enumerate(store.shard_bounds(3, 2)):
        arrays = {f"stage{i}": stage[start:stop] for i, stage in enumerate(maps)}
        store.write_shard(group, shard, arrays | {"embeddings": np.zeros((stop - start, 1))})
    store.finalize(tmp_path / "s.zarr")
    cache = open_cache(tmp_path / "s.zarr")
    for read, written in zip(cache.stages(["c", "a"]), maps, strict=True):
        np.testing.assert_array_equal(read, written[[2, 0]])
    shard_file = tmp_path / "s.zarr" / "stage1" / "c" / "0" / "0" / "0" / "0"  # shard 0: rows 0-1
    shard_file.unlink()  # a deleted stage shard is damage, named like any other
    assert any("stage1 rows 0-1 are missing" in problem for problem in store.verify(tmp_path / "s.zarr"))
    with pytest.raises(CacheMismatch, match="no stage maps"):
        _cache(tmp_path / "plain.zarr", ["a"], np.zeros((1, 2)), {})
        open_cache(tmp_path / "plain.zarr").stages(["a"])


def test_rows_are_read_in_the_order_asked_across_chunks(tmp_path: Path) -> None:
    values = np.arange(100 * 3, dtype=np.float32).reshape(100, 3)
    ids = [f"s{i}" for i in range(100)]
    write_all(tmp_path / "c.zarr", ids, values, {"x": 1}, Layout(dim=3, shard_rows=32, chunk_rows=8))
    array = zarr.open_group(tmp_path / "c.zarr", mode="r")["embeddings"]
    rng = np.random.default_rng(0)
    for rows in (
        rng.permutation(100),
        rng.integers(0, 100, 40),
        np.array([99, 0, 7, 8, 7]),
        np.array([], int),
    ):
        np.testing.assert_array_equal(store.read_rows(array, rows), values[rows])
