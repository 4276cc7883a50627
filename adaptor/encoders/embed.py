"""Run a frozen encoder once over a manifest and write its pooled embeddings to the cache."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from adaptor.cache import store
from adaptor.data.images import Preprocess, read_grey
from adaptor.encoders.registry import LoadedEncoder

log = logging.getLogger(__name__)


class _Images(Dataset):
    def __init__(self, paths: list[str], preprocess: Preprocess) -> None:
        self.paths, self.preprocess = paths, preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.preprocess(read_grey(self.paths[index]))


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _autocast(device: torch.device) -> contextlib.AbstractContextManager:
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()


def image_batches(
    encoder: LoadedEncoder, paths: list[str], num_workers: int, device: torch.device
) -> Iterator[np.ndarray]:
    """Decode in DataLoader workers, encode in channels_last (faster on CPU and GPU alike)."""
    preprocess = Preprocess(**encoder.spec.preprocess)
    loader = DataLoader(
        _Images(paths, preprocess),
        batch_size=encoder.spec.batch_size,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    module = encoder.module.to(device, memory_format=torch.channels_last)
    with torch.inference_mode(), _autocast(device):
        for batch in loader:
            batch = batch.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            yield module(batch).float().cpu().numpy()


def text_batches(
    encoder: LoadedEncoder, texts: list[str], device: torch.device, window: int = 4096
) -> Iterator[np.ndarray]:
    """Tokenise with dynamic padding (up to ``max_length``) and pool, in the input order.

    Within each window of ``window`` reports, batches are formed from reports of similar length, so
    little compute goes to padding; rows are put back in input order before they are yielded.
    """
    module = encoder.module.to(device)
    size, limit = encoder.spec.batch_size, encoder.spec.max_length
    with torch.inference_mode(), _autocast(device):
        for start in range(0, len(texts), window):
            chunk = texts[start : start + window]
            lengths = [
                len(ids) for ids in encoder.tokenizer(chunk, truncation=True, max_length=limit)["input_ids"]
            ]
            order = np.argsort(lengths, kind="stable")
            pooled = np.empty((len(chunk), encoder.dim), dtype=np.float32)
            for batch_start in range(0, len(chunk), size):
                rows = order[batch_start : batch_start + size]
                tokens = encoder.tokenizer(
                    [chunk[i] for i in rows],
                    padding=True,
                    truncation=True,
                    max_length=limit,
                    return_tensors="pt",
                ).to(device)
                pooled[rows] = module(tokens["input_ids"], tokens["attention_mask"]).float().cpu().numpy()
            yield pooled


def embed_manifest(
    encoder: LoadedEncoder,
    manifest: pl.DataFrame,
    out: str | Path,
    num_workers: int = 2,
    shard_rows: int = 4096,
    dtype: str = "float16",
    extra_attrs: dict[str, object] | None = None,
) -> dict[str, object]:
    """Embed every manifest row with ``encoder`` into a new cache at ``out``; returns its identity."""
    device = _device()
    ids = manifest["id"].to_list()
    identity = encoder.identity() | {"manifest_ids_sha256": store.ids_sha256(ids)}
    _, writer = store.create(
        out, ids, encoder.dim, identity, shard_rows=shard_rows, dtype=dtype, extra_attrs=extra_attrs
    )
    if encoder.spec.modality == "image":
        batches = image_batches(encoder, manifest["path"].to_list(), num_workers, device)
    else:
        batches = text_batches(encoder, manifest["text"].to_list(), device, window=shard_rows)
    with tqdm(total=len(ids), desc=f"embed {encoder.spec.name}", unit="sample", mininterval=5) as progress:
        for batch in batches:
            writer.append(batch)
            progress.update(len(batch))
    writer.close()
    log.info("embedded %d samples with %s on %s", len(ids), encoder.spec.name, device)
    return identity
