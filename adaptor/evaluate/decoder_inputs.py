"""What a segmentation decoder reads, and which decoder that is.

A ViT keeps one grid of patch tokens: the conv decoder upsamples it (``conv``). A CNN shrinks its maps
stage by stage: the U-Net climbs back through all of them (``unet``), with the Adaptor's pooled image
vector at its bottleneck for the Adaptor methods. ``auto`` picks by the encoder: the U-Net for a CNN.

The U-Net's stage maps come from the image cache when ``embed.stages`` listed the dataset, or else
from the frozen encoder run inside the segmentation job. Caching costs disk (EfficientNet-Lite0 at
128 px: 225 kB per image in float16; ResNet-50 at 224 px: 4.6 MB) and saves every job a forward
pass. A job holds the maps of the samples it reads in memory, when they fit in half of its memory;
computed in the job, maps that do not fit are computed again for every batch, every epoch, and
cached ones that do not fit are refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import polars as pl
import torch

from adaptor.cache.store import Cache, stage_name
from adaptor.encoders.registry import LoadedEncoder
from adaptor.errors import ImageError, SettingsError
from adaptor.evaluate.segmentation import DECODERS, Decoder, Held, Rows, Streamed
from adaptor.progress import Progress

log = logging.getLogger(__name__)

DECODER_KINDS = ("auto", *DECODERS)
Read = Callable[[list[str]], list[np.ndarray]]


def token_grid(features: Cache) -> Callable[[list[str]], Rows]:
    """The conv decoder's inputs: the cache's tokens (the encoder's, or the Adaptor's)."""
    return lambda ids: Held([features.tokens(ids)[0]])


def with_adaptor(stages: Read, adaptor: Cache | None) -> Read:
    """The U-Net's inputs: the stage maps and, for the Adaptor methods, the Adaptor's pooled vectors."""

    def read(ids: list[str]) -> list[np.ndarray]:
        vectors = [] if adaptor is None else [adaptor.embeddings[adaptor.rows(ids)]]
        return [*stages(ids), *vectors]

    return read


def encoded_stages(
    encoder: LoadedEncoder,
    indices: list[int],
    paths: dict[str, str],
    device: torch.device,
    dtype: np.dtype,
    report: bool,
) -> Read:
    """The maps of the stages ``indices`` names, from the frozen encoder run here on the samples'
    images (``paths``: id -> file), rounded to ``dtype`` as a cache would hold them; with
    ``report``, each read's progress logged."""
    from adaptor.encoders.embed import image_shards

    def read(ids: list[str]) -> list[np.ndarray]:
        files = [paths[i] for i in ids]
        counter = Progress(len(files), f"{encoder.spec.name} stage maps", "samples") if report else None
        shards = image_shards(
            *(encoder, files, [(0, len(files))], [0], 0, device, False, dtype),
            counted=counter.update if counter else lambda rows: None,
            stage_indices=indices,
        )
        (_, arrays), *_ = list(shards)  # one shard: these samples
        if counter:
            counter.close()
        if problems := [(f, r) for f, r in zip(files, arrays["reasons"], strict=True) if r]:
            raise ImageError(
                f"{problems[0][1]} ({len(problems)} images unreadable for their stage maps, though embedded"
                " before: changed since? rerun the image cache's embed job)"
            )
        return [arrays[stage_name(k)] for k in range(len(indices))]

    return read


def once_each(read: Read) -> Read:
    """``read``, each sample once: later reads reuse what the first computed."""
    seen: dict[str, list[np.ndarray]] = {}

    def reuse(ids: list[str]) -> list[np.ndarray]:
        if missing := list(dict.fromkeys(i for i in ids if i not in seen)):
            for sample, *maps in zip(missing, *read(missing), strict=True):
                seen[sample] = maps
        return [np.stack([seen[i][k] for i in ids]) for k in range(len(seen[ids[0]]))]

    return reuse


def choose(
    kind: str,
    features: Cache,
    image: Cache,
    adaptor: bool,
    encoder: Callable[[], LoadedEncoder],
    frame: pl.DataFrame,
    device: torch.device,
    memory_bytes: int,
    stage_indices: list[int] | None = None,
) -> tuple[Decoder, Callable[[list[str]], Rows]]:
    """The decoder ``kind`` (auto, conv, unet) resolves to, and the function giving its inputs for
    a split's sample ids.

    ``features`` is what the cell's method reads (the image cache, or the Adaptor's features),
    ``image`` the image cache under it, ``encoder()`` loads that cache's encoder (only when the stage
    maps are not cached), ``frame`` gives each sample's image path, ``memory_bytes`` is what the
    job may hold of stage maps, and ``stage_indices`` the stages computed here (all by default; a
    cache holds those its embedding named).
    """
    if kind not in DECODER_KINDS:
        raise SettingsError(f"evaluate.segmentation.decoder.kind: one of {DECODER_KINDS}, got {kind!r}")
    loaded = None
    if kind == "auto" and not image.stage_count:
        loaded = encoder()
        kind = "unet" if loaded.is_pyramid() else "conv"
    if kind == "conv":
        if not features.has_tokens:
            raise SettingsError(
                f"{features.path}: no patch tokens for the conv decoder; add the dataset to embed.tokens"
            )
        return Decoder("conv"), token_grid(features)
    adaptor_cache = features if adaptor else None
    if image.stage_count:
        cached = with_adaptor(_cached_stages(image, len(frame), memory_bytes), adaptor_cache)
        return Decoder("unet", adaptor), lambda ids: Held(cached(ids))
    loaded = loaded or encoder()
    paths = dict(zip(frame["id"].to_list(), frame["path"].to_list(), strict=True))
    dtype = np.dtype(image.attrs["layout"]["dtype"])
    computed, held = _computed_stages(loaded, stage_indices, paths, device, dtype, memory_bytes)
    read = with_adaptor(computed, adaptor_cache)
    if held:
        return Decoder("unet", adaptor), lambda ids: Held(read(ids))
    return Decoder("unet", adaptor), lambda ids: Streamed(np.asarray(ids), read)


def _cached_stages(image: Cache, samples: int, memory_bytes: int) -> Read:
    """The image cache's stage maps, refused when a job's samples' maps would not fit in memory."""
    layout = image.attrs["layout"]
    needed = _held_bytes(layout["stage_shapes"], np.dtype(layout["dtype"]), samples)
    if needed > memory_bytes:
        raise SettingsError(
            f"{image.path}: the stage maps of {samples} samples take {needed / 1e9:.1f} GB, more than"
            f" the {memory_bytes / 1e9:.1f} GB this job may hold; give the rule more memory (mem_mb), or"
            " drop the dataset from embed.stages to compute the maps batch by batch in the job"
        )
    log.info("U-Net over the stage maps cached in %s (%.2f GB held)", image.path, needed / 1e9)
    return image.stages


def _computed_stages(
    encoder: LoadedEncoder,
    stage_indices: list[int] | None,
    paths: dict[str, str],
    device: torch.device,
    dtype: np.dtype,
    memory_bytes: int,
) -> tuple[Read, bool]:
    """Stage maps computed in the job, and whether they are held (each sample's computed once) or
    computed again for every batch (when they would not fit in ``memory_bytes``)."""
    if not encoder.is_pyramid():
        raise SettingsError(
            f"evaluate.segmentation.decoder.kind: unet needs a CNN's pyramid of stage maps; "
            f"{encoder.spec.name} has none: use conv (or auto)"
        )
    indices = encoder.stage_indices(stage_indices)
    needed = _held_bytes(encoder.stage_shapes(indices=indices), dtype, len(paths))
    held = needed <= memory_bytes
    log.info(
        "U-Net over stage maps of %s computed here (embed.stages does not list this dataset): %s",
        encoder.spec.name,
        f"each sample's once, {needed / 1e9:.2f} GB held"
        if held
        else f"for every batch ({needed / 1e9:.1f} GB would not fit in {memory_bytes / 1e9:.1f} GB)",
    )
    computed = encoded_stages(encoder, indices, paths, device, dtype, report=held)
    return (once_each(computed) if held else computed), held


def _held_bytes(shapes: list[tuple[int, int, int]] | list[list[int]], dtype: np.dtype, samples: int) -> int:
    return samples * dtype.itemsize * sum(int(np.prod(shape)) for shape in shapes)
