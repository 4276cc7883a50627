"""Run a frozen encoder once over a manifest into a cache, in three steps: create, embed, finalise.

The steps are separate so that a large dataset can be split into parts that run as separate jobs
(on other GPUs or nodes) writing disjoint shards of one pre-created cache. A part skips the shards
already done, so a killed job resumes where it stopped. Batches never cross a shard boundary, so each
shard is computed the same way whichever part, run or resume computes it: a resumed or fanned-out
cache equals an uninterrupted one value for value.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import polars as pl
import torch
import zarr
from torch.utils.data import DataLoader, Dataset

from adaptor.cache import store
from adaptor.cache.complete import finalize_cache
from adaptor.data.device_images import DECODES, decode_greys, decode_on_device, geometry, read_jpeg
from adaptor.data.images import Preprocess, read_grey
from adaptor.devices import autocast, compute_device
from adaptor.encoders.registry import LoadedEncoder
from adaptor.errors import SampleError
from adaptor.progress import Progress

log = logging.getLogger(__name__)
ON_ERROR = ("fail", "skip")


@dataclass(frozen=True)
class EmbedSettings:
    """How a cache is written (the ``embed`` section of the config, per dataset)."""

    num_workers: int = 2
    shard_rows: int = 4096
    chunk_rows: int = 512
    dtype: str = "float16"
    compression: str | None = None
    tokens: bool = False
    stages: bool = False
    stage_indices: tuple[int, ...] | None = None
    on_error: str = "fail"
    decode: str = "auto"

    def __post_init__(self) -> None:
        if self.on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {self.on_error!r}")
        if self.decode not in DECODES:
            raise ValueError(f"embed.decode must be one of {DECODES}, got {self.decode!r}")

    def layout(self, encoder: LoadedEncoder) -> store.Layout:
        return store.Layout(
            dim=encoder.dim,
            shard_rows=self.shard_rows,
            chunk_rows=self.chunk_rows,
            dtype=self.dtype,
            compression=self.compression,
            token_shape=encoder.token_shape if self.tokens else None,
            token_mask=self.tokens and encoder.spec.modality == "text",
            **self._stages(encoder),
        )

    def _stages(self, encoder: LoadedEncoder) -> dict[str, Any]:
        """The layout's stage maps: their shapes and which of the encoder's stages they are."""
        if not self.stages:
            return {}
        if not encoder.is_pyramid():
            log.info(
                "embed.stages: %s has no pyramid of stage maps (a ViT keeps one token grid, which its "
                "segmentation decoder reads); none cached",
                encoder.spec.name,
            )
            return {}
        indices = encoder.stage_indices(self.stage_indices)
        shapes = tuple((c, h, w) for c, h, w in encoder.stage_shapes(indices=indices))
        return {"stage_shapes": shapes, "stage_indices": tuple(indices)}


def cache_identity(encoder: LoadedEncoder, ids: list[str]) -> dict[str, object]:
    """What the cached values depend on: the encoder, its weights, its preprocessing, the id list."""
    return encoder.identity() | {"manifest_ids_sha256": store.ids_sha256(ids)}


@dataclass
class _ShardBuffer:
    """One shard's rows, filled batch by batch in any order, handed to the writer when complete."""

    shard: int
    start: int
    arrays: dict[str, np.ndarray]
    reasons: list[str] = field(default_factory=list)

    @classmethod
    def empty(
        cls,
        shard: int,
        bounds: tuple[int, int],
        encoder: LoadedEncoder,
        tokens: bool,
        dtype: np.dtype,
        stage_shapes: list[tuple[int, int, int]] | None = None,
    ) -> _ShardBuffer:
        """Zeroed arrays in the cache's dtype (float16 halves the RAM a token shard needs)."""
        start, stop = bounds
        rows = stop - start
        arrays = {"embeddings": np.zeros((rows, encoder.dim), dtype=dtype)}
        if tokens:
            arrays["tokens"] = np.zeros((rows, *encoder.token_shape), dtype=dtype)
            if encoder.spec.modality == "text":
                arrays["token_mask"] = np.zeros((rows, encoder.token_shape[0]), dtype=bool)
        for index, shape in enumerate(stage_shapes or []):
            arrays[store.stage_name(index)] = np.zeros((rows, *shape), dtype=dtype)
        return cls(shard, start, arrays, [""] * rows)

    def put(
        self,
        rows: np.ndarray,
        pooled: torch.Tensor,
        tokens: torch.Tensor,
        mask: torch.Tensor | None = None,
        stages: list[torch.Tensor] | None = None,
    ) -> None:
        local = rows - self.start
        self.arrays["embeddings"][local] = pooled.float().cpu().numpy()
        for index, stage in enumerate(stages or []):
            self.arrays[store.stage_name(index)][local] = stage.float().cpu().numpy()
        if "tokens" in self.arrays:
            if mask is not None:  # padding states depend on the batch; store zeros there
                tokens = tokens * mask.unsqueeze(-1).to(tokens.dtype)
            self.arrays["tokens"][local, : tokens.shape[1]] = tokens.float().cpu().numpy()
        if "token_mask" in self.arrays and mask is not None:
            self.arrays["token_mask"][local, : mask.shape[1]] = mask.bool().cpu().numpy()

    def finish(self) -> tuple[int, dict[str, np.ndarray]]:
        return self.shard, self.arrays | {"reasons": np.asarray(self.reasons, dtype=str)}


# A sample as a DataLoader worker hands it over: (row, preprocessed image, JPEG bytes, reason).
# Exactly one of the image and the bytes is set for a readable file, neither for a bad one.
_Item = tuple[int, torch.Tensor | None, torch.Tensor | None, str]


class _Images(Dataset[_Item]):
    """Reads and, unless the device decodes JPEGs, decodes and preprocesses in DataLoader workers;
    an unreadable image becomes a reason, not a crash."""

    def __init__(self, paths: list[str], preprocess: Preprocess, jpeg_bytes: bool) -> None:
        self.paths, self.preprocess, self.jpeg_bytes = paths, preprocess, jpeg_bytes

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> _Item:
        try:
            jpeg = read_jpeg(self.paths[index]) if self.jpeg_bytes else None
            if jpeg is not None:
                return index, None, jpeg, ""
            return index, self.preprocess(read_grey(self.paths[index])), None, ""
        except Exception as error:  # every failure is reported with its sample
            return index, None, None, str(error)


class _Batch(NamedTuple):
    """A batch as the workers hand it over: one tensor of the preprocessed images and one of the
    JPEGs' bytes end to end (a tensor per sample would cost a shared-memory handle each)."""

    rows: np.ndarray
    reasons: list[str]
    images: torch.Tensor | None  # [n, C, H, W]: the samples at ``image_positions``
    image_positions: list[int]
    jpegs: torch.Tensor | None  # uint8 bytes of the samples at ``jpeg_positions``, concatenated
    jpeg_positions: list[int]
    jpeg_offsets: list[int]  # where each JPEG starts in ``jpegs``, and where the last one ends


def _collate(items: list[_Item]) -> _Batch:
    images = [(position, item[1]) for position, item in enumerate(items) if item[1] is not None]
    jpegs = [(position, item[2]) for position, item in enumerate(items) if item[2] is not None]
    return _Batch(
        rows=np.array([item[0] for item in items], dtype=np.int64),
        reasons=[item[3] for item in items],
        images=torch.stack([image for _, image in images]) if images else None,
        image_positions=[position for position, _ in images],
        jpegs=torch.cat([data for _, data in jpegs]) if jpegs else None,
        jpeg_positions=[position for position, _ in jpegs],
        jpeg_offsets=np.cumsum([0, *(len(data) for _, data in jpegs)]).tolist(),
    )


class _Stopwatch:
    """Seconds spent in named steps: CUDA events on a GPU (the device's own time, read once at the
    end, so timing adds no synchronisation), wall time on the CPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.events: dict[str, list[tuple[Any, Any]]] = {}
        self.wall: dict[str, float] = {}

    @contextlib.contextmanager
    def timing(self, step: str) -> Iterator[None]:
        if self.cuda:
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            yield
            stop.record()
            self.events.setdefault(step, []).append((start, stop))
        else:
            began = time.perf_counter()
            yield
            self.wall[step] = self.wall.get(step, 0.0) + time.perf_counter() - began

    def seconds(self) -> dict[str, float]:
        if self.cuda:
            torch.cuda.synchronize()
            return {
                step: sum(start.elapsed_time(stop) for start, stop in pairs) / 1000
                for step, pairs in self.events.items()
            }
        return dict(self.wall)


def _device_batch(
    batch: _Batch, paths: list[str], preprocess: Preprocess, device: torch.device
) -> tuple[np.ndarray, torch.Tensor | None, list[str]]:
    """The batch's rows, its readable images as one tensor on ``device`` (JPEGs decoded and
    preprocessed there, the rest as the workers left them) and every row's reason."""
    reasons = list(batch.reasons)
    moved = None if batch.images is None else batch.images.to(device, non_blocking=True)
    if batch.jpegs is None:  # the workers decoded every readable image, in row order
        return batch.rows, moved, reasons
    images = dict(zip(batch.image_positions, moved if moved is not None else [], strict=True))
    datas = [batch.jpegs[start:stop] for start, stop in itertools.pairwise(batch.jpeg_offsets)]
    greys = decode_greys(datas, [paths[batch.rows[p]] for p in batch.jpeg_positions], device)
    for position, grey in zip(batch.jpeg_positions, greys, strict=True):
        if isinstance(grey, str):
            reasons[position] = grey
        else:
            images[position] = preprocess.normalised(geometry(grey, preprocess))
    if not images:
        return batch.rows, None, reasons
    return batch.rows, torch.stack([images[position] for position in sorted(images)]), reasons


# An image batch's encoder outputs: pooled vectors, tokens and, when cached, the stage maps.
_Outputs = tuple[torch.Tensor, torch.Tensor, list[torch.Tensor] | None]


@dataclass
class _ShardAssembler:
    """Fills shard buffers batch by batch and hands each one over when the next shard begins."""

    bounds: list[tuple[int, int]]
    encoder: LoadedEncoder
    tokens: bool
    dtype: np.dtype
    stage_shapes: list[tuple[int, int, int]] | None = None
    buffer: _ShardBuffer | None = None

    def add(
        self, rows: np.ndarray, reasons: list[str], outputs: _Outputs | None
    ) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        shard_size = self.bounds[0][1] - self.bounds[0][0]  # every shard but the last is full
        shard = int(rows[0]) // shard_size
        if self.buffer is not None and self.buffer.shard != shard:
            yield self.buffer.finish()
            self.buffer = None
        if self.buffer is None:
            self.buffer = _ShardBuffer.empty(
                shard, self.bounds[shard], self.encoder, self.tokens, self.dtype, self.stage_shapes
            )
        if outputs is not None:
            pooled, tokens, stages = outputs
            self.buffer.put(rows[[not reason for reason in reasons]], pooled, tokens, stages=stages)
        for row, reason in zip(rows.tolist(), reasons, strict=True):
            self.buffer.reasons[row - self.buffer.start] = reason

    def finish(self) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        if self.buffer is not None:
            yield self.buffer.finish()


def image_shards(
    encoder: LoadedEncoder,
    paths: list[str],
    bounds: list[tuple[int, int]],
    shards: list[int],
    num_workers: int,
    device: torch.device,
    tokens: bool,
    dtype: np.dtype,
    counted: Callable[[int], None] = lambda rows: None,
    decode: str = "auto",
    timings: dict[str, float] | None = None,
    stage_indices: Sequence[int] | None = None,
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Read in workers, decode JPEGs on the device (``decode``: :func:`decode_on_device`) or in the
    workers, encode in channels_last with BatchNorms folded, yield whole shards; ``counted`` hears
    of every batch's rows, and ``timings`` (when given) receives the seconds spent decoding on the
    device and in the encoder's forward. With ``stage_indices``, the shards also hold those stages'
    maps (``stage0``, ... in that order).

    One batch stays in flight: its outputs are copied back to the host after the next batch's
    forward is queued, so on a GPU the copy, the next batch's reading and decoding overlap the
    encoder instead of waiting for it."""
    size = encoder.spec.batch_size
    batches = [
        list(range(first, min(first + size, bounds[shard][1])))
        for shard in shards
        for first in range(bounds[shard][0], bounds[shard][1], size)
    ]
    preprocess = encoder.spec.preprocess
    on_device = decode_on_device(decode, device)
    loader = DataLoader(
        _Images(paths, preprocess, on_device),
        batch_sampler=batches,
        num_workers=num_workers,
        collate_fn=_collate,
        # Pinned pages speed the copy of decoded images to the GPU; JPEG bytes are read by the
        # decoder where they are, and pinning them would only copy every file once more.
        pin_memory=device.type == "cuda" and not on_device,
    )
    # The stage maps (those ``stage_indices`` names, when given) are read between the layers that
    # folding fuses: with them, the module as loaded.
    stage_shapes = None if stage_indices is None else encoder.stage_shapes(indices=stage_indices)
    module: Any = (encoder.module if stage_shapes else encoder.inference_module()).to(device)
    module = module.to(memory_format=torch.channels_last)
    assembler = _ShardAssembler(bounds, encoder, tokens, dtype, stage_shapes)

    def with_stages(inputs: torch.Tensor) -> _Outputs:
        pooled, tokens, maps = module.with_stages(inputs)
        return pooled, tokens, [maps[i] for i in stage_indices or ()]

    watch = _Stopwatch(device)
    in_flight: tuple[np.ndarray, list[str], _Outputs | None] | None = None
    with torch.inference_mode(), autocast(device):
        for batch in loader:
            with watch.timing("decode"):
                rows, images, reasons = _device_batch(batch, paths, preprocess, device)
            outputs: _Outputs | None = None
            if images is not None:
                with watch.timing("forward"):
                    inputs = images.contiguous(memory_format=torch.channels_last)
                    outputs = with_stages(inputs) if stage_shapes else (*module(inputs), None)
            if in_flight is not None:
                yield from assembler.add(*in_flight)
                counted(len(in_flight[0]))
            in_flight = rows, reasons, outputs
        if in_flight is not None:
            yield from assembler.add(*in_flight)
            counted(len(in_flight[0]))
    yield from assembler.finish()
    if timings is not None:
        timings.update(watch.seconds())


def text_problem(text: str | None) -> str:
    """Why a report cannot be embedded, or an empty string."""
    if text is None:
        return "missing report"
    if not text.strip():
        return "empty report"
    if "\ufffd" in text:  # a lossy decode upstream; Arrow strings are valid UTF-8 otherwise
        return "report is not valid UTF-8 (replacement characters from a failed decode)"
    return ""


def text_shards(
    encoder: LoadedEncoder,
    texts: Sequence[str | None],
    bounds: list[tuple[int, int]],
    shards: list[int],
    device: torch.device,
    tokens: bool,
    dtype: np.dtype,
    counted: Callable[[int], None] = lambda rows: None,
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Tokenise with dynamic padding, batching reports of similar length within each shard;
    ``counted`` hears of every batch's rows (and of the shard's rejected reports)."""
    module = encoder.module.to(device)
    size, limit = encoder.spec.batch_size, encoder.spec.max_length
    with torch.inference_mode(), autocast(device):
        for shard in shards:
            start, stop = bounds[shard]
            buffer = _ShardBuffer.empty(shard, bounds[shard], encoder, tokens, dtype)
            buffer.reasons = [text_problem(text) for text in texts[start:stop]]
            valid = [start + i for i, reason in enumerate(buffer.reasons) if not reason]
            counted(stop - start - len(valid))
            if not valid:
                yield buffer.finish()
                continue
            # Tokenise the shard once; batches take reports of similar length and pad to their longest.
            encoded = encoder.tokenizer([texts[row] for row in valid], truncation=True, max_length=limit)
            order = np.argsort([len(ids) for ids in encoded["input_ids"]], kind="stable")
            for first in range(0, len(order), size):
                chosen = order[first : first + size]
                batch = encoder.tokenizer.pad(
                    {name: [encoded[name][i] for i in chosen] for name in ("input_ids", "attention_mask")},
                    return_tensors="pt",
                ).to(device)
                rows = np.asarray(valid, dtype=np.int64)[chosen]
                pooled, states = module(batch["input_ids"], batch["attention_mask"])
                buffer.put(rows, pooled, states, batch["attention_mask"])
                counted(len(rows))
            yield buffer.finish()


def _image_timings(
    timings: dict[str, float], seconds: float, on_device: bool, device: torch.device
) -> dict[str, object]:
    """Where an image stage's time went: the encoder's forward (its share of the wall time is what
    the stage can reach at best), decoding on the device, and on a GPU how busy the two kept it."""
    forward, decoding = timings.get("forward", 0.0), timings.get("decode", 0.0)
    on_gpu = device.type == "cuda" and seconds > 0
    return {
        "decode": "device" if on_device else "workers",
        "forward_seconds": round(forward, 3),
        "device_decode_seconds": round(decoding, 3) if on_device else None,
        "forward_share": round(forward / seconds, 3) if seconds else None,
        "gpu_busy_share": round((forward + decoding) / seconds, 3) if on_gpu else None,
    }


def init_cache(
    encoder: LoadedEncoder,
    manifest: pl.DataFrame,
    path: str | Path,
    settings: EmbedSettings,
    resume: bool = False,
) -> zarr.Group:
    """Create the empty cache that every part fills; with ``resume``, keep a matching one as it is."""
    ids = manifest["id"].to_list()
    identity = cache_identity(encoder, ids)
    layout = settings.layout(encoder)
    layout_key = store.identity_key(layout.as_dict())
    if layout.stage_shapes:
        per_image = layout.stage_bytes()
        log.info(
            "stage maps %s: %.1f kB per image, %.2f GB for %d images (%s)",
            [list(shape) for shape in layout.stage_shapes],
            per_image / 1e3,
            per_image * len(ids) / 1e9,
            len(ids),
            layout.dtype,
        )
    if resume and (Path(path) / "zarr.json").exists():
        group = zarr.open_group(path, mode="r+")
        same = (group.attrs.get("key"), group.attrs.get("layout_key"))
        if same == (store.identity_key(identity), layout_key):
            return group
    return store.create(
        path,
        ids,
        layout,
        identity,
        extra_attrs={"parameters": encoder.parameter_count(), "layout_key": layout_key},
    )


def embed_part(
    encoder: LoadedEncoder,
    manifest: pl.DataFrame,
    path: str | Path,
    settings: EmbedSettings,
    part: int = 0,
    parts: int = 1,
) -> dict[str, object]:
    """Embed the not-yet-written shards of part ``part`` of ``parts``; returns what was done."""
    started = time.perf_counter()
    ids = manifest["id"].to_list()
    group = store.open_for_writing(path, store.identity_key(cache_identity(encoder, ids)))
    bounds = store.shard_bounds(len(ids), store.shard_rows(group))
    mine = store.part_shards(len(bounds), part, parts)
    todo = store.pending(group, mine)
    device = compute_device()
    tokens, dtype = "tokens" in group, store.member(group, "embeddings").dtype
    counter = Progress(
        sum(bounds[shard][1] - bounds[shard][0] for shard in todo),
        f"{encoder.spec.name} part {part + 1}/{parts}",
        "samples",
    )
    timings: dict[str, float] = {}
    stage_indices = store.attribute(group, "layout").get("stage_indices")
    if encoder.spec.modality == "image":
        paths = manifest["path"].to_list()
        shards = image_shards(
            *(encoder, paths, bounds, todo, settings.num_workers, device, tokens, dtype, counter.update),
            decode=settings.decode,
            timings=timings,
            stage_indices=stage_indices,
        )
    else:
        texts = manifest["text"].to_list()
        shards = text_shards(encoder, texts, bounds, todo, device, tokens, dtype, counter.update)
    writer = store.ShardWriter(group)
    rows = rejected = 0
    try:
        for shard, arrays in shards:
            bad = np.flatnonzero(arrays["reasons"] != "")
            if len(bad) and settings.on_error == "fail":
                row = bounds[shard][0] + int(bad[0])
                raise SampleError(
                    f"sample {ids[row]} (manifest row {row}): {arrays['reasons'][bad[0]]}. "
                    "Fix or remove it, or set on_error: skip to record it in the rejects table."
                )
            writer.put(shard, arrays)
            rows += len(arrays["reasons"])
            rejected += len(bad)
    finally:
        counter.close()
        writer.close()
    seconds = time.perf_counter() - started
    report = {
        "part": part,
        "parts": parts,
        "shards": list(mine),
        "already_done": len(mine) - len(todo),
        "rows": rows,
        "rejected": rejected,
        "seconds": round(seconds, 3),
        "samples_per_s": round(rows / seconds, 2) if rows else None,
        "device": str(device),
    }
    if encoder.spec.modality == "image":
        report |= _image_timings(timings, seconds, decode_on_device(settings.decode, device), device)
    log.info("%s part %d/%d: %s", encoder.spec.name, part + 1, parts, report)
    return report


def embed_manifest(
    encoder: LoadedEncoder,
    manifest: pl.DataFrame,
    path: str | Path,
    settings: EmbedSettings,
    dataset: str = "",
    resume: bool = True,
) -> pl.DataFrame:
    """All three steps in one process (one part); returns the rejects table."""
    init_cache(encoder, manifest, path, settings, resume=resume)
    embed_part(encoder, manifest, path, settings)
    return finalize_cache(path, manifest, dataset, encoder.spec.modality)
