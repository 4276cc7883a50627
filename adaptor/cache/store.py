"""Create, fill, finalise and open embedding caches: one Zarr v3 group per (dataset, encoder).

A cache group holds, row for row in manifest order:

- ``ids`` [N] str: the sample ids;
- ``embeddings`` [N, D]: pooled vectors (float16 by default);
- ``tokens`` [N, T, E] and ``token_mask`` [N, T] bool, when asked for: patch tokens or token states;
- ``stage0`` ... ``stageK`` [N, C_k, H_k, W_k], when asked for: a CNN's feature map after each stage,
  shallowest first, for the U-Net segmentation decoder;
- ``reasons`` [N] str: empty for an embedded sample, else why it was rejected;
- ``done`` [S] bool: shard ``s`` is completely written. It is set last, after the shard's data.

Every per-sample array is split along samples into shards of the same size, so one shard of one array
is one file, written whole (partial writes into a shard are read-modify-write and many times slower),
and the parts of a fanned-out embedding write disjoint files of one pre-created group. A job killed
mid-shard leaves that shard's ``done`` unset; a rerun writes it again from the start.

Every chunk carries a CRC32C checksum (Zarr's ``crc32c`` codec, inside the shard; the shard index has
its own) and every shard file is written even when its values are all zero, so a flipped byte or a
deleted file is an error naming the file and its rows, never a silently different or zero value.
``verify`` checks a whole cache (``python -m adaptor cache verify PATH``).
"""

from __future__ import annotations

import hashlib
import json
import queue
import shutil
import threading
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import zarr
import zarr.codecs
from zarr.core.array_spec import ArrayConfigParams

from adaptor.errors import CacheDamaged, CacheMismatch

MAX_CHUNK_BYTES = 16 << 20
MAX_SHARD_BYTES = 512 << 20
FORMAT = 2  # 2: checksummed chunks, every shard file written
PER_SAMPLE = ("embeddings", "tokens", "token_mask", "reasons")


def stage_name(index: int) -> str:
    """The array of the ``index``-th stage map (0: the shallowest)."""
    return f"stage{index}"


def ids_sha256(ids: list[str] | np.ndarray) -> str:
    """Hash of the ordered sample ids: ties a cache to the manifest it was built from."""
    return hashlib.sha256("\n".join(map(str, ids)).encode()).hexdigest()


def identity_key(identity: dict[str, Any]) -> str:
    """A short, order-independent fingerprint of JSON-able settings (cache keys, run keys, config hashes)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def member(group: zarr.Group, name: str) -> zarr.Array[Any]:
    """``group[name]``, an array (Zarr types a group's members as arrays or groups)."""
    found = group[name]
    if not isinstance(found, zarr.Array):
        raise CacheMismatch(f"{group.store_path}: {name} is a group, not an array")
    return found


def values(group: zarr.Group, name: str) -> np.ndarray:
    """Every value of the array ``name``, in memory."""
    return np.asarray(member(group, name)[:])


def attribute(group: zarr.Group, name: str) -> Any:
    """A JSON attribute as the plain value it was written as."""
    return group.attrs[name]


@dataclass(frozen=True)
class Layout:
    """The arrays of a cache and how they are stored."""

    dim: int
    shard_rows: int = 4096
    chunk_rows: int = 512
    dtype: str = "float16"
    compression: str | None = None
    token_shape: tuple[int, int] | None = None
    token_mask: bool = False
    stage_shapes: tuple[tuple[int, int, int], ...] | None = None
    stage_indices: tuple[int, ...] | None = None  # which of the encoder's stages those are

    def row_bytes(self) -> int:
        """Bytes of one sample in the widest per-sample array."""
        tokens = self.token_shape[0] * self.token_shape[1] if self.token_shape else 0
        stages = [c * h * w for c, h, w in self.stage_shapes or ()]
        return np.dtype(self.dtype).itemsize * max(self.dim, tokens, *stages)

    def as_dict(self) -> dict[str, Any]:
        """The layout as stored in a cache's attributes; without stage maps, as it was before they
        existed, so that a finished cache keeps its layout key."""
        fields = asdict(self)
        stages = ("stage_shapes", "stage_indices")
        return fields if self.stage_shapes else {k: v for k, v in fields.items() if k not in stages}

    def stage_bytes(self) -> int:
        """Bytes of one sample's stage maps: what caching them costs per image."""
        return np.dtype(self.dtype).itemsize * sum(c * h * w for c, h, w in self.stage_shapes or ())

    def chunk_size(self, n: int) -> int:
        """Rows per chunk (the unit of reading), capped so that token chunks stay small to read."""
        return max(1, min(self.chunk_rows, self.shard_rows, n, MAX_CHUNK_BYTES // self.row_bytes()))

    def shard_size(self, n: int) -> int:
        """Rows per shard: a multiple of the chunk size, capped in bytes (a shard is buffered in RAM)."""
        chunk = self.chunk_size(n)
        rows = min(self.shard_rows, n, max(chunk, MAX_SHARD_BYTES // self.row_bytes()))
        return max(chunk, rows // chunk * chunk)


def shard_bounds(n: int, shard_rows: int) -> list[tuple[int, int]]:
    """[start, stop) rows of every shard."""
    return [(start, min(start + shard_rows, n)) for start in range(0, n, shard_rows)]


def part_shards(n_shards: int, part: int, parts: int) -> range:
    """The contiguous shards that part ``part`` of ``parts`` embeds (some parts may get none)."""
    if not 0 <= part < parts:
        raise ValueError(f"part {part} is outside 0..{parts - 1}")
    return range(part * n_shards // parts, (part + 1) * n_shards // parts)


def _compressors(name: str | None) -> list[Any]:
    """The chunk codecs after serialisation: the compression asked for, then a checksum."""
    if name not in (None, "zstd"):
        raise ValueError(f"unknown compression {name!r} (null or zstd)")
    return [*([zarr.codecs.ZstdCodec(level=3)] if name == "zstd" else []), zarr.codecs.Crc32cCodec()]


WRITE_EVERY_CHUNK: ArrayConfigParams = {"write_empty_chunks": True}  # a missing file is then always damage
REBUILD = "delete the cache folder and rerun (its embed jobs and their dependants run again)"


def create(
    path: str | Path,
    ids: list[str],
    layout: Layout,
    identity: dict[str, Any],
    extra_attrs: dict[str, Any] | None = None,
) -> zarr.Group:
    """Create an empty cache for ``ids`` (replacing whatever is at ``path``), ready for shards."""
    path = Path(path)
    if path.exists():
        shutil.rmtree(path)
    group = zarr.open_group(path, mode="w")
    n = len(ids)
    shard, chunk = layout.shard_size(n), layout.chunk_size(n)
    group.create_array("ids", shape=(n,), dtype=str, chunks=(max(n, 1),))[:] = np.asarray(ids, dtype=str)

    def per_sample(name: str, tail: tuple[int, ...], dtype: str) -> None:
        group.create_array(
            name,
            shape=(n, *tail),
            dtype=dtype,
            chunks=(chunk, *tail),
            shards=(shard, *tail),
            compressors=_compressors(layout.compression),
            fill_value=0,
        )

    per_sample("embeddings", (layout.dim,), layout.dtype)
    if layout.token_shape is not None:
        per_sample("tokens", layout.token_shape, layout.dtype)
        if layout.token_mask:
            per_sample("token_mask", layout.token_shape[:1], "bool")
    for index, shape in enumerate(layout.stage_shapes or ()):
        per_sample(stage_name(index), tuple(shape), layout.dtype)
    group.create_array(
        "reasons",
        shape=(n,),
        dtype=str,
        chunks=(shard,),
        compressors=_compressors(None),
    )
    n_shards = len(shard_bounds(n, shard))
    group.create_array("done", shape=(n_shards,), dtype=bool, chunks=(1,), fill_value=False)
    attrs: dict[str, Any] = {
        "identity": identity,
        "key": identity_key(identity),
        "ids_sha256": ids_sha256(ids),
        "layout": layout.as_dict() | {"shard_rows": shard, "chunk_rows": chunk},
        "complete": False,
        "format": FORMAT,
    }
    group.attrs.update(attrs | (extra_attrs or {}))
    return group


def open_for_writing(path: str | Path, expected_key: str) -> zarr.Group:
    """Open a created cache to add shards; refuse one made for another encoder or manifest."""
    path = Path(path)
    if not (path / "zarr.json").exists():
        raise FileNotFoundError(f"{path}: no embedding cache here; create it first (embed-init)")
    group = zarr.open_group(path, mode="r+")
    if group.attrs.get("key") != expected_key:
        raise CacheMismatch(
            f"{path}: created for key {group.attrs.get('key')}, but this encoder and manifest give "
            f"{expected_key}. Re-create it (rerun embed-init)."
        )
    return group


def shard_rows(group: zarr.Group) -> int:
    return int(attribute(group, "layout")["shard_rows"])


def pending(group: zarr.Group, shards: range) -> list[int]:
    """The shards of ``shards`` that are not completely written yet."""
    done = values(group, "done")
    return [shard for shard in shards if not done[shard]]


def write_shard(group: zarr.Group, shard: int, arrays: dict[str, np.ndarray]) -> None:
    """Write one whole shard of every per-sample array (``reasons`` defaults to all accepted), then
    mark it done."""
    start = shard * shard_rows(group)
    stop = min(start + shard_rows(group), member(group, "ids").shape[0])
    arrays = {"reasons": np.full(stop - start, "", dtype=str)} | arrays
    for name, values in arrays.items():
        if len(values) != stop - start:
            raise ValueError(f"shard {shard} of {name} needs {stop - start} rows, got {len(values)}")
        target = member(group, name).with_config(WRITE_EVERY_CHUNK)  # the config is not stored with the array
        target[start:stop] = values.astype(target.dtype, copy=False)
    member(group, "done")[shard] = True


class ShardWriter:
    """Writes finished shards on a background thread, so the encoder never waits for storage.

    At most ``depth`` shards wait in memory; ``put`` blocks when the disk is the bottleneck.
    An error in the thread is raised again by the next ``put`` or by ``close``.
    """

    def __init__(self, group: zarr.Group, depth: int = 2) -> None:
        self.group = group
        self.queue: queue.Queue[tuple[int, dict[str, np.ndarray]] | None] = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="shard-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is None:
                try:
                    write_shard(self.group, *item)
                except BaseException as error:  # handed to the main thread
                    self.error = error

    def put(self, shard: int, arrays: dict[str, np.ndarray]) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put((shard, arrays))

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


def _shard_file(path: Path, array: zarr.Array[Any], shard: int) -> Path:
    """The file holding shard ``shard`` of a per-sample array (its first chunk-grid coordinate)."""
    return path / array.basename / array.metadata.encode_chunk_key((shard, *[0] * (array.ndim - 1)))


def _shards_of(path: Path, group: zarr.Group) -> list[tuple[zarr.Array[Any], int, int, int]]:
    """(array, shard, first row, stop row) for every shard of every per-sample array."""
    n, rows = member(group, "ids").shape[0], shard_rows(group)
    stages = [stage_name(index) for index in range(len(attribute(group, "layout").get("stage_shapes") or ()))]
    return [
        (member(group, name), shard, start, stop)
        for name in [*PER_SAMPLE, *stages]
        if name in group
        for shard, (start, stop) in enumerate(shard_bounds(n, rows))
    ]


def _damage(path: Path, array: zarr.Array[Any], shard: int, start: int, stop: int, what: str) -> str:
    return f"{_shard_file(path, array, shard)}: {array.basename} rows {start}-{stop - 1} {what}"


def _missing_shards(path: Path, group: zarr.Group) -> list[str]:
    return [
        _damage(path, array, shard, start, stop, "are missing (file deleted)")
        for array, shard, start, stop in _shards_of(path, group)
        if not _shard_file(path, array, shard).exists()
    ]


def verify(path: str | Path) -> list[str]:
    """Every problem of a cache, one line each naming the file and rows: missing or unreadable shard
    files and checksum mismatches. Reads every byte; an empty list means the cache is whole."""
    path = Path(path)
    if not (path / "zarr.json").exists():
        return [f"{path}: no embedding cache here"]
    group = zarr.open_group(path, mode="r")
    if group.attrs.get("format") != FORMAT:
        return [f"{path}: written by an older adaptor without checksums; {REBUILD}"]
    problems = _missing_shards(path, group)
    for array, shard, start, stop in _shards_of(path, group):
        if _shard_file(path, array, shard).exists():
            try:
                array[start:stop]
            except ValueError as error:
                problems.append(_damage(path, array, shard, start, stop, f"are corrupt ({error})"))
    if ids_sha256(values(group, "ids").tolist()) != group.attrs.get("ids_sha256"):
        problems.append(f"{path}: ids do not match the recorded hash (altered cache)")
    return problems


def read_checked(
    path: Path, array: zarr.Array[Any], selection: Any = slice(None), rows: np.ndarray | None = None
) -> np.ndarray:
    """``array[selection]`` (or the ``rows`` in order, by ``read_rows``), with a checksum failure
    reported as the damaged shard files and their rows instead of a bare ``ValueError``."""
    try:
        return read_rows(array, rows) if rows is not None else np.asarray(array[selection])
    except ValueError as error:
        if "checksum" not in str(error):
            raise
        damaged = [line for line in verify(path) if f"/{array.basename}/" in line] or [str(error)]
        raise CacheDamaged("; ".join(damaged[:5]) + f". To rebuild: {REBUILD}.") from error


def finalize(path: str | Path) -> dict[str, str]:
    """Check that every shard is written, consolidate the metadata and mark the cache complete.

    Returns the rejected samples as {id: reason}.
    """
    path = Path(path)
    group = zarr.open_group(path, mode="r+")
    done = values(group, "done")
    if not done.all():
        missing = np.flatnonzero(~done)
        raise CacheMismatch(
            f"{path}: {len(missing)} of {len(done)} shards are not written (e.g. shards "
            f"{missing[:5].tolist()}); rerun the embed parts before finalising"
        )
    reasons = values(group, "reasons")
    rejected = np.flatnonzero(reasons != "")
    ids = values(group, "ids")
    group.attrs.update({"complete": True, "rejected": len(rejected)})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="zarr")
        zarr.consolidate_metadata(path)
    return {str(ids[row]): str(reasons[row]) for row in rejected}


def write_computed(
    path: str | Path,
    ids: list[str],
    identity: dict[str, Any],
    layout: Layout,
    compute: Callable[[int, int], dict[str, np.ndarray]],
) -> None:
    """Create, fill and finalise a cache of derived values, computing one whole shard at a time.

    ``compute(start, stop)`` returns the per-sample arrays (``embeddings``, and ``tokens`` when the
    layout has them) of rows [start, stop), so a derived token cache never has to fit in memory.
    """
    group = create(path, ids, layout, identity)
    for shard, (start, stop) in enumerate(shard_bounds(len(ids), shard_rows(group))):
        write_shard(group, shard, compute(start, stop))
    finalize(path)


def write_all(
    path: str | Path,
    ids: list[str],
    embeddings: np.ndarray,
    identity: dict[str, Any],
    layout: Layout,
    tokens: np.ndarray | None = None,
) -> None:
    """Create, fill and finalise a cache from arrays already in memory."""

    def rows(start: int, stop: int) -> dict[str, np.ndarray]:
        arrays = {"embeddings": embeddings[start:stop]}
        return arrays | ({"tokens": tokens[start:stop]} if tokens is not None else {})

    write_computed(path, ids, identity, layout, rows)


def read_rows(array: zarr.Array[Any], rows: np.ndarray) -> np.ndarray:
    """``array[rows]`` in the order asked. Each chunk holding wanted rows is read once, as the slice
    from its first to its last wanted row: Zarr's orthogonal integer indexing costs ~25 times as much
    per row (1.3 s against 0.05 s for 1,200 token grids), and a slice never holds more than a chunk."""
    rows = np.asarray(rows, dtype=np.int64)
    values = np.empty((len(rows), *array.shape[1:]), dtype=array.dtype)
    if not len(rows):
        return values
    order = np.argsort(rows, kind="stable")
    ordered = rows[order]
    chunk = ordered // array.chunks[0]
    starts = np.flatnonzero(np.r_[True, chunk[1:] != chunk[:-1]])
    for first, stop in zip(starts, [*starts[1:], len(ordered)], strict=True):
        low, high = int(ordered[first]), int(ordered[stop - 1]) + 1
        values[order[first:stop]] = np.asarray(array[low:high])[ordered[first:stop] - low]
    return values


@dataclass
class Cache:
    """An opened, complete cache: the embedded samples' ids and pooled vectors (float32, in memory).

    Rejected samples are left out here, so every later stage sees the same reduced id set.
    Token arrays stay on disk and are read on demand with :meth:`tokens`.
    """

    path: Path
    ids: np.ndarray
    embeddings: np.ndarray
    attrs: dict[str, Any]
    stored_rows: np.ndarray
    rejected: dict[str, str]

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

    @property
    def has_tokens(self) -> bool:
        return self.attrs["layout"].get("token_shape") is not None

    def tokens(self, wanted: list[str] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Token arrays [n, T, E] (float32) and their mask [n, T] for ``wanted`` ids, read from disk."""
        group = zarr.open_group(self.path, mode="r")
        if "tokens" not in group:
            raise CacheMismatch(f"{self.path}: no token arrays; set embed.tokens for this dataset")
        stored = self.stored_rows[self.rows(wanted)]
        tokens = read_checked(self.path, member(group, "tokens"), rows=stored).astype(np.float32, copy=False)
        if "token_mask" in group:
            return tokens, read_checked(self.path, member(group, "token_mask"), rows=stored)
        return tokens, np.ones(tokens.shape[:2], dtype=bool)

    @property
    def stage_count(self) -> int:
        return len(self.attrs["layout"].get("stage_shapes") or ())

    def stages(self, wanted: list[str] | np.ndarray) -> list[np.ndarray]:
        """Each stage's maps [n, C, H, W] for ``wanted`` ids, shallowest first, from disk, in the
        cache's dtype (float16 by default: half the memory; a decoder converts each batch)."""
        if not self.stage_count:
            raise CacheMismatch(f"{self.path}: no stage maps; set embed.stages for this dataset")
        group = zarr.open_group(self.path, mode="r")
        stored = self.stored_rows[self.rows(wanted)]
        arrays = [member(group, stage_name(index)) for index in range(self.stage_count)]
        return [read_checked(self.path, a, rows=stored) for a in arrays]


def _differences(expected: dict[str, Any], found: dict[str, Any], prefix: str = "") -> list[str]:
    differences = []
    for name, value in expected.items():
        other = found.get(name)
        if isinstance(value, dict) and isinstance(other, dict):
            differences += _differences(value, other, f"{prefix}{name}.")
        elif value != other:
            differences.append(f"{prefix}{name}: cache has {other!r}, expected {value!r}")
    return differences


def open_cache(path: str | Path, expected: dict[str, Any] | None = None) -> Cache:
    """Open a complete cache, refusing it when its identity differs from ``expected`` in any field."""
    path = Path(path)
    if not (path / "zarr.json").exists():
        raise FileNotFoundError(f"{path}: no embedding cache here")
    group = zarr.open_group(path, mode="r")
    attrs: dict[str, Any] = dict(group.attrs)
    if not attrs.get("complete"):
        raise CacheMismatch(f"{path}: the cache is unfinished (embedding interrupted); rerun its embed rules")
    if attrs.get("format") != FORMAT:
        raise CacheMismatch(f"{path}: written by an older adaptor without checksums; {REBUILD}")
    missing = _missing_shards(path, group)
    if missing:
        listed = "; ".join(missing[:5])
        raise CacheDamaged(f"{listed} ({len(missing)} shard files in all). To rebuild: {REBUILD}.")
    differences = _differences(expected or {}, attrs.get("identity", {}))
    if differences:
        raise CacheMismatch(
            f"{path}: stale cache, built with other settings or inputs ({'; '.join(differences)}). "
            "Re-run its embed rules."
        )
    ids = values(group, "ids")
    if ids_sha256(ids.tolist()) != attrs.get("ids_sha256"):
        raise CacheMismatch(f"{path}: ids do not match the recorded hash (altered cache)")
    reasons = read_checked(path, member(group, "reasons"))
    kept = np.flatnonzero(reasons == "")
    return Cache(
        path=path,
        ids=ids[kept],
        embeddings=np.asarray(read_checked(path, member(group, "embeddings")), dtype=np.float32)[kept],
        attrs=attrs,
        stored_rows=kept,
        rejected={str(ids[row]): str(reasons[row]) for row in np.flatnonzero(reasons != "")},
    )


def usable(ids: list[str], *caches: Cache) -> list[str]:
    """``ids`` minus those any cache rejected at embedding; an id a cache never had is an error."""
    for cache in caches:
        unknown = [i for i in ids if i not in cache.positions and i not in cache.rejected]
        if unknown:
            raise CacheMismatch(
                f"{cache.path}: {len(unknown)} ids are not in the cache, e.g. {unknown[:3]}; "
                "it was built from another manifest"
            )
    return [i for i in ids if all(i in cache.positions for cache in caches)]
