"""What a segmentation decoder reads, and which decoder that is.

A ViT keeps one grid of patch tokens: the conv decoder upsamples it (``conv``). A CNN shrinks its maps
stage by stage: the U-Net climbs back through all of them (``unet``), with the Adaptor's pooled image
vector at its bottleneck for the Adaptor methods. ``auto`` picks by the encoder: the U-Net for a CNN.

The U-Net's stage maps come from the image cache when ``embed.stages`` listed the dataset, or else
from the frozen encoder run inside the segmentation job, once per sample, on the samples its cells
read. Caching costs disk (EfficientNet-Lite0 at 128 px: 225 kB per image in float16; ResNet-50 at
224 px: 4.6 MB) and saves every job that forward pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import polars as pl
import torch

from adaptor.cache.store import Cache
from adaptor.encoders.registry import LoadedEncoder
from adaptor.errors import SettingsError
from adaptor.evaluate.segmentation import DECODERS, Decoder, Inputs
from adaptor.progress import Progress

log = logging.getLogger(__name__)

DECODER_KINDS = ("auto", *DECODERS)


def token_grid(features: Cache) -> Callable[[list[str]], Inputs]:
    """The conv decoder's inputs: the cache's tokens (the encoder's, or the Adaptor's)."""
    return lambda ids: [features.tokens(ids)[0]]


def with_adaptor(
    stages: Callable[[list[str]], Inputs], adaptor: Cache | None
) -> Callable[[list[str]], Inputs]:
    """The U-Net's inputs: the stage maps and, for the Adaptor methods, the Adaptor's pooled vectors."""

    def read(ids: list[str]) -> Inputs:
        vectors = [] if adaptor is None else [adaptor.embeddings[adaptor.rows(ids)]]
        return [*stages(ids), *vectors]

    return read


def encoded_stages(
    encoder: LoadedEncoder, paths: dict[str, str], device: torch.device, dtype: np.dtype
) -> Callable[[list[str]], Inputs]:
    """Stage maps from the frozen encoder run here, each sample once (later reads reuse them), in
    ``dtype`` as a cache would hold them; ``paths`` maps every sample id to its image file."""
    from adaptor.encoders.embed import image_shards

    shapes = encoder.stage_shapes()
    seen: dict[str, list[np.ndarray]] = {}

    def read(ids: list[str]) -> Inputs:
        missing = list(dict.fromkeys(i for i in ids if i not in seen))
        if missing:
            counter = Progress(len(missing), f"{encoder.spec.name} stage maps", "samples")
            files = [paths[i] for i in missing]
            for _, arrays in image_shards(
                *(encoder, files, [(0, len(files))], [0], 0, device, False, dtype, counter.update),
                stage_shapes=shapes,
            ):
                if problems := [(f, r) for f, r in zip(files, arrays["reasons"], strict=True) if r]:
                    raise SettingsError(f"stage maps: {len(problems)} images unreadable, first {problems[0]}")
                for row, sample in enumerate(missing):
                    seen[sample] = [arrays[f"stage{k}"][row] for k in range(len(shapes))]
            counter.close()
        return [np.stack([seen[i][k] for i in ids]) for k in range(len(shapes))]

    return read


def choose(
    kind: str,
    features: Cache,
    image: Cache,
    adaptor: bool,
    encoder: Callable[[], LoadedEncoder],
    frame: pl.DataFrame,
    device: torch.device,
) -> tuple[Decoder, Callable[[list[str]], Inputs]]:
    """The decoder ``kind`` (auto, conv, unet) resolves to and the function reading its inputs.

    ``features`` is what the cell's method reads (the image cache, or the Adaptor's features),
    ``image`` the image cache under it, ``encoder()`` loads that cache's encoder (only when the stage
    maps are not cached), and ``frame`` gives each sample's image path.
    """
    if kind not in DECODER_KINDS:
        raise SettingsError(f"evaluate.segmentation.decoder.kind: one of {DECODER_KINDS}, got {kind!r}")
    loaded = None
    if kind == "auto" and not image.stage_count:
        loaded = encoder()
        kind = "unet" if loaded.is_pyramid() else "conv"
    elif kind == "auto":
        kind = "unet"
    if kind == "conv":
        if not features.has_tokens:
            raise SettingsError(
                f"{features.path}: no patch tokens for the conv decoder; add the dataset to embed.tokens"
            )
        return Decoder("conv"), token_grid(features)
    adaptor_cache = features if adaptor else None
    if image.stage_count:
        log.info("U-Net over the stage maps cached in %s", image.path)
        return Decoder("unet", adaptor), with_adaptor(image.stages, adaptor_cache)
    loaded = loaded or encoder()
    if not loaded.is_pyramid():
        raise SettingsError(
            f"evaluate.segmentation.decoder.kind: unet needs a CNN's pyramid of stage maps; "
            f"{loaded.spec.name} has none: use conv (or auto)"
        )
    log.info(
        "U-Net over stage maps of %s computed here (embed.stages does not list this dataset): "
        "each sample's once in this job, not cached",
        loaded.spec.name,
    )
    paths = dict(zip(frame["id"].to_list(), frame["path"].to_list(), strict=True))
    dtype = np.dtype(image.attrs["layout"]["dtype"])
    return Decoder("unet", adaptor), with_adaptor(encoded_stages(loaded, paths, device, dtype), adaptor_cache)
