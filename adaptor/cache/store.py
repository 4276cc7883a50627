"""Create, fill and open embedding caches.

A cache holds ``ids`` (strings) and ``embeddings`` [N, D] (float16 by default), sharded along
samples, plus attributes that name what produced it. Rows are written a whole shard at a time:
partial writes into a shard are read-modify-write in Zarr and many times slower.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import zarr


class CacheMismatch(ValueError):
    """A cache was built from different inputs than the ones now asked for."""


def ids_sha256(ids: list[str] | np.ndarray) -> str:
    """Hash of the ordered sample ids: ties a cache to the manifest it was built from."""
    return hashlib.sha256("\n".join(map(str, ids)).encode()).hexdigest()


def identity_key(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


class ShardWriter:
    """Accumulate rows and write them to the array one full shard at a time."""

    def __init__(self, array: zarr.Array) -> None:
        self.array = array
        self.shard_rows = array.shards[0] if array.shards else array.chunks[0]
        self.buffer = np.empty((self.shard_rows, *array.shape[1:]), dtype=array.dtype)
        self.filled = 0
        self.start = 0

    def append(self, rows: np.ndarray) -> None:
        while len(rows):
            take = min(len(rows), self.shard_rows - self.filled)
            self.buffer[self.filled : self.filled + take] = rows[:take]
            self.filled += take
            rows = rows[take:]
            if self.filled == self.shard_rows:
                self.flush()

    def flush(self) -> None:
        if self.filled:
            self.array[self.start : self.start + self.filled] = self.buffer[: self.filled]
            self.start += self.filled
            self.filled = 0

    def close(self) -> None:
        self.flush()
        if self.start != self.array.shape[0]:
            raise RuntimeError(f"cache incomplete: wrote {self.start} of {self.array.shape[0]} rows")


def create(
    path: str | Path,
    ids: list[str],
    dim: int,
    identity: dict[str, Any],
    shard_rows: int = 4096,
    chunk_rows: int = 512,
    dtype: str = "float16",
    extra_attrs: dict[str, Any] | None = None,
) -> tuple[zarr.Group, ShardWriter]:
    """Create an empty cache for ``ids`` and return it with a writer for its embeddings."""
    path = Path(path)
    if path.exists():
        shutil.rmtree(path)
    group = zarr.open_group(path, mode="w")
    n = len(ids)
    shard = max(1, min(shard_rows, n))
    chunk = max(1, min(chunk_rows, shard))
    shard -= shard % chunk
    id_array = group.create_array("ids", shape=(n,), dtype=str, chunks=(max(n, 1),))
    id_array[:] = np.asarray(ids, dtype=str)
    embeddings = group.create_array(
        "embeddings",
        shape=(n, dim),
        dtype=dtype,
        chunks=(chunk, dim),
        shards=(shard, dim),
        compressors=None,
    )
    group.attrs.update({"identity": identity, "key": identity_key(identity), "ids_sha256": ids_sha256(ids)})
    group.attrs.update(extra_attrs or {})
    return group, ShardWriter(embeddings)


@dataclass
class Cache:
    """An opened cache: its ids, embeddings (as float32 in memory) and attributes."""

    path: Path
    ids: np.ndarray
    embeddings: np.ndarray
    attrs: dict[str, Any]

    @cached_property
    def positions(self) -> dict[str, int]:
        """Row of each id, built once per opened cache."""
        return {sample: row for row, sample in enumerate(self.ids.tolist())}

    def rows(self, wanted: list[str] | np.ndarray) -> np.ndarray:
        """Row indices of ``wanted`` ids; every id must be present (joins are by id, never by order)."""
        position = self.positions
        missing = [w for w in wanted if w not in position]
        if missing:
            raise CacheMismatch(
                f"{self.path}: {len(missing)} requested ids are not in the cache, e.g. {missing[:3]}"
            )
        return np.fromiter((position[w] for w in wanted), dtype=np.int64, count=len(wanted))


def open_cache(path: str | Path, expected_key: str | None = None) -> Cache:
    """Open a cache, refusing it when its identity key differs from ``expected_key``."""
    path = Path(path)
    if not (path / "zarr.json").exists():
        raise FileNotFoundError(f"{path}: no embedding cache here")
    group = zarr.open_group(path, mode="r")
    attrs = dict(group.attrs)
    if expected_key is not None and attrs.get("key") != expected_key:
        raise CacheMismatch(
            f"{path}: cache key {attrs.get('key')} differs from the expected {expected_key}; "
            "it was built with other settings or inputs. Re-run its embed rule."
        )
    ids = group["ids"][:]
    if ids_sha256(ids.tolist()) != attrs.get("ids_sha256"):
        raise CacheMismatch(f"{path}: ids do not match the recorded hash (incomplete or altered cache)")
    return Cache(
        path=path,
        ids=ids,
        embeddings=np.asarray(group["embeddings"][:], dtype=np.float32),
        attrs=attrs,
    )


def join(first: Cache, second: Cache, ids: list[str] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Aligned embeddings of two caches for the same ``ids`` (e.g. image and text of each pair)."""
    return first.embeddings[first.rows(ids)], second.embeddings[second.rows(ids)]
