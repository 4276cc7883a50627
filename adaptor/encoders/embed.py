"""Run a frozen encoder once over a manifest into a cache, in three steps: create, embed, finalise.

The steps are separate so that a large dataset can be split into parts that run as separate jobs
(on other GPUs or nodes) writing disjoint shards of one pre-created cache. A part skips the shards
already done, so a killed job resumes where it stopped. Batches never cross a shard boundary, so each
shard is computed the same way whichever part, run or resume computes it: a resumed or fanned-out
cache equals an uninterrupted one value for value.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
import zarr
from torch.utils.data import DataLoader, Dataset

from adaptor.cache import store
from adaptor.cache.complete import finalize_cache
from adaptor.data.images import Preprocess, read_grey
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
    on_error: str = "fail"

    def __post_init__(self) -> None:
        if self.on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {self.on_error!r}")

    def layout(self, encoder: LoadedEncoder) -> store.Layout:
        return store.Layout(
            dim=encoder.dim,
            shard_rows=self.shard_rows,
            chunk_rows=self.chunk_rows,
            dtype=self.dtype,
            compression=self.compression,
            token_shape=encoder.token_shape if self.tokens else None,
            token_mask=self.tokens and encoder.spec.modality == "text",
        )


def cache_identity(encoder: LoadedEncoder, ids: list[str]) -> dict[str, object]:
    """What the cached values depend on: the encoder, its weights, its preprocessing, the id list."""
    return encoder.identity() | {"manifest_ids_sha256": store.ids_sha256(ids)}


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()


@dataclass
class _ShardBuffer:
    """One shard's rows, filled batch by batch in any order, handed to the writer when complete."""

    shard: int
    start: int
    arrays: dict[str, np.ndarray]
    reasons: list[str] = field(default_factory=list)

    @classmethod
    def empty(
        cls, shard: int, bounds: tuple[int, int], encoder: LoadedEncoder, tokens: bool, dtype: np.dtype
    ) -> _ShardBuffer:
        """Zeroed arrays in the cache's dtype (float16 halves the RAM a token shard needs)."""
        start, stop = bounds
        rows = stop - start
        arrays = {"embeddings": np.zeros((rows, encoder.dim), dtype=dtype)}
        if tokens:
            arrays["tokens"] = np.zeros((rows, *encoder.token_shape), dtype=dtype)
            if encoder.spec.modality == "text":
                arrays["token_mask"] = np.zeros((rows, encoder.token_shape[0]), dtype=bool)
        return cls(shard, start, arrays, [""] * rows)

    def put(
        self,
        rows: np.ndarray,
        pooled: torch.Tensor,
        tokens: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> None:
        local = rows - self.start
        self.arrays["embeddings"][local] = pooled.float().cpu().numpy()
        if "tokens" in self.arrays:
            if mask is not None:  # padding states depend on the batch; store zeros there
                tokens = tokens * mask.unsqueeze(-1).to(tokens.dtype)
            self.arrays["tokens"][local, : tokens.shape[1]] = tokens.float().cpu().numpy()
        if "token_mask" in self.arrays and mask is not None:
            self.arrays["token_mask"][local, : mask.shape[1]] = mask.bool().cpu().numpy()

    def finish(self) -> tuple[int, dict[str, np.ndarray]]:
        return self.shard, self.arrays | {"reasons": np.asarray(self.reasons, dtype=str)}


class _Images(Dataset[Any]):
    """Decodes and preprocesses in DataLoader workers; an unreadable image becomes a reason, not a crash."""

    def __init__(self, paths: list[str], preprocess: Preprocess) -> None:
        self.paths, self.preprocess = paths, preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str]:
        try:
            return index, self.preprocess(read_grey(self.paths[index])), ""
        except Exception as error:  # every failure is reported with its sample
            return index, None, str(error)


def _collate(
    items: list[tuple[int, torch.Tensor | None, str]],
) -> tuple[np.ndarray, torch.Tensor | None, list[str]]:
    images = [image for _, image, _ in items if image is not None]
    rows = np.array([index for index, _, _ in items], dtype=np.int64)
    return rows, (torch.stack(images) if images else None), [reason for _, _, reason in items]


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
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Decode in workers (pinned memory on CUDA), encode in channels_last with BatchNorms folded, yield
    whole shards; ``counted`` hears of every batch's rows."""
    size = encoder.spec.batch_size
    batches = [
        list(range(first, min(first + size, bounds[shard][1])))
        for shard in shards
        for first in range(bounds[shard][0], bounds[shard][1], size)
    ]
    loader = DataLoader(
        _Images(paths, encoder.spec.preprocess),
        batch_sampler=batches,
        num_workers=num_workers,
        collate_fn=_collate,
        pin_memory=device.type == "cuda",
    )
    module = encoder.inference_module().to(device).to(memory_format=torch.channels_last)
    shard_size = bounds[0][1] - bounds[0][0] if bounds else 1  # every shard but the last is full
    buffer: _ShardBuffer | None = None
    with torch.inference_mode(), _autocast(device):
        for rows, images, reasons in loader:
            shard = int(rows[0]) // shard_size
            if buffer is not None and buffer.shard != shard:
                yield buffer.finish()
                buffer = None
            if buffer is None:
                buffer = _ShardBuffer.empty(shard, bounds[shard], encoder, tokens, dtype)
            good = np.array([not reason for reason in reasons])
            if images is not None:
                batch = images.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                buffer.put(rows[good], *module(batch))
            for row, reason in zip(rows.tolist(), reasons, strict=True):
                buffer.reasons[row - buffer.start] = reason
            counted(len(rows))
    if buffer is not None:
        yield buffer.finish()


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
    with torch.inference_mode(), _autocast(device):
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
    layout_key = store.identity_key(asdict(layout))
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
    device = _device()
    tokens, dtype = "tokens" in group, store.member(group, "embeddings").dtype
    counter = Progress(
        sum(bounds[shard][1] - bounds[shard][0] for shard in todo),
        f"{encoder.spec.name} part {part + 1}/{parts}",
        "samples",
    )
    if encoder.spec.modality == "image":
        paths = manifest["path"].to_list()
        shards = image_shards(
            encoder, paths, bounds, todo, settings.num_workers, device, tokens, dtype, counter.update
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
