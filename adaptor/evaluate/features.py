"""The frozen Adaptor image path over a downstream image cache, computed once and cached.

Pooled features feed the classification heads and zero-shot; per-patch features (when the image
cache holds tokens) feed the segmentation decoders. Both are written shard by shard, in the image
cache's dtype, as a cache of their own, keyed by the image cache and the Adaptor's weights.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from adaptor.cache import store
from adaptor.encoders.weights import sha256
from adaptor.errors import CacheMismatch
from adaptor.model.adaptor import WEIGHTS, Adaptor, load_adaptor

BATCH = 256


def _batched(function: Callable[[torch.Tensor], torch.Tensor], inputs: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate(
            [function(torch.from_numpy(inputs[i : i + BATCH])).numpy() for i in range(0, len(inputs), BATCH)]
        )


def write_adaptor_features(
    model: Adaptor, source: store.Cache, path: str | Path, identity: dict[str, object], shard_rows: int = 1024
) -> bool:
    """Cache the Adaptor image path for every sample of ``source``; returns whether tokens were written.

    Pooled mode embeds the cached pooled vectors (the published path); token mode embeds the patch
    tokens behind its summary token, so it needs a token cache.
    """
    with_tokens = source.has_tokens
    if model.config.mode == "tokens" and not with_tokens:
        raise CacheMismatch(
            f"{source.path}: the token-mode Adaptor needs patch tokens; add this dataset to embed.tokens"
        )
    ids = source.ids.tolist()
    token_count = int(source.attrs["layout"]["token_shape"][0]) if with_tokens else 0
    layout = store.Layout(
        dim=model.config.width,
        shard_rows=shard_rows,
        dtype=source.attrs["layout"]["dtype"],
        token_shape=(token_count, model.config.width) if with_tokens else None,
    )

    def compute(start: int, stop: int) -> dict[str, np.ndarray]:
        if not with_tokens:
            return {"embeddings": _batched(model.encode_image, source.embeddings[start:stop])}
        tokens, _ = source.tokens(ids[start:stop])
        pooled = (
            _batched(model.encode_image, tokens)
            if model.config.mode == "tokens"
            else _batched(model.encode_image, source.embeddings[start:stop])
        )
        return {"embeddings": pooled, "tokens": _batched(model.encode_image_tokens, tokens)}

    store.write_computed(path, ids, identity, layout, compute)
    return with_tokens


def adaptor_features(source: store.Cache, adaptor_dir: str | Path, out: str | Path) -> bool:
    """The trained Adaptor's image path over an image cache, as a cache whose identity names the
    image cache, both weights files, the text cache the Adaptor was trained beside and its mode (a
    change to any of them makes it stale). Returns whether it holds patch tokens."""
    directory = Path(adaptor_dir)
    model = load_adaptor(directory)
    pretraining = json.loads((directory / "metrics.json").read_text())
    identity = {
        "image_cache_key": source.attrs["key"],
        "image_weights_sha256": source.attrs["identity"]["weights_sha256"],
        "adaptor_weights_sha256": sha256(directory / WEIGHTS),
        "text_cache_key": pretraining["text_cache_key"],
        "path": "image",
        "mode": model.config.mode,
    }
    return write_adaptor_features(model, source, out, identity)
