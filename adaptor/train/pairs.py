"""Image-report pairs from the caches, as batches of tensors: no encoder, no per-sample Python work.

Pooled vectors are loaded once (onto the GPU when there is one) and a batch is an index slice.
Token arrays are loaded once too when they fit ``ram_budget_bytes``; otherwise they stream from Zarr
in windows of consecutive rows (contiguous reads), the next window read on a background thread
while the current one trains. Both shuffle with the caller's generator, so a run is reproducible and
resumable: the generator state at an epoch boundary decides every later batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import zarr

from adaptor.cache.store import Cache, member, read_checked

Batch = tuple[torch.Tensor, ...]


def batch_indices(n: int, batch_size: int, generator: torch.Generator | None) -> list[torch.Tensor]:
    """A permutation (or the identity without a generator) cut into batches.

    A trailing batch of one sample has no negatives; it is folded into the previous batch instead.
    """
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    cuts = list(range(0, n, batch_size))
    if len(cuts) > 1 and n - cuts[-1] < 2:
        cuts.pop()
    return [order[start:end] for start, end in zip(cuts, [*cuts[1:], n], strict=True)]


class PooledPairs:
    """Pooled image and text vectors of the same ids, held in memory on ``device``."""

    def __init__(self, image: Cache, text: Cache, ids: list[str], device: torch.device) -> None:
        arrays = [torch.from_numpy(c.embeddings[c.rows(ids)]) for c in (image, text)]
        needed = sum(a.numel() * a.element_size() for a in arrays)
        fits = device.type != "cuda" or needed < torch.cuda.mem_get_info(device)[0] // 2
        # On the GPU when they fit in half its free memory; else pinned in host memory, sliced there.
        self.image, self.text = (a.to(device) if fits else a.pin_memory() for a in arrays)
        self.device = device

    def __len__(self) -> int:
        return len(self.image)

    @property
    def dims(self) -> tuple[int, int]:
        return self.image.shape[1], self.text.shape[1]

    def batch_sizes(self, batch_size: int) -> list[int]:
        """The size of every batch of an epoch."""
        return [len(index) for index in batch_indices(len(self), batch_size, None)]

    def batches(self, batch_size: int, generator: torch.Generator | None = None) -> Iterator[Batch]:
        for index in batch_indices(len(self), batch_size, generator):
            index = index.to(self.image.device)
            yield (
                self.image[index].to(self.device, non_blocking=True),
                self.text[index].to(self.device, non_blocking=True),
            )


class TokenPairs:
    """Image and text token arrays (with masks) of the same ids, in memory or streamed in windows."""

    def __init__(
        self,
        image: Cache,
        text: Cache,
        ids: list[str],
        device: torch.device,
        ram_budget_bytes: int,
        window_rows: int = 4096,
    ) -> None:
        self.paths = [image.path, text.path]
        self.sources = [
            (zarr.open_group(cache.path, mode="r"), cache.stored_rows[cache.rows(ids)])
            for cache in (image, text)
        ]
        for group, _ in self.sources:
            if "tokens" not in group:
                raise ValueError(
                    f"{group.store}: token mode needs token arrays; add the dataset to embed.tokens"
                )
        self.n, self.device = len(ids), device
        token_arrays = [member(group, "tokens") for group, _ in self.sources]
        row_bytes = sum(int(np.prod(tokens.shape[1:])) * tokens.dtype.itemsize for tokens in token_arrays)
        self.streamed = row_bytes * self.n > ram_budget_bytes
        self.window_rows = (
            min(window_rows, max(2, ram_budget_bytes // (4 * row_bytes))) if self.streamed else self.n
        )
        self.windows = [
            range(start, min(start + self.window_rows, self.n))
            for start in range(0, self.n, self.window_rows)
        ]
        self.resident = None if self.streamed else self._load(range(self.n))

    def __len__(self) -> int:
        return self.n

    @property
    def dims(self) -> tuple[int, int]:
        (image, _), (text, _) = self.sources
        return int(member(image, "tokens").shape[2]), int(member(text, "tokens").shape[2])

    def batch_sizes(self, batch_size: int) -> list[int]:
        """The size of every batch of an epoch (batches never span two windows)."""
        return [
            len(index) for window in self.windows for index in batch_indices(len(window), batch_size, None)
        ]

    def _load(self, window: range) -> list[torch.Tensor]:
        """Tokens and masks of the window's pairs: one contiguous read per array, then a selection."""
        arrays = []
        for path, (group, rows) in zip(self.paths, self.sources, strict=True):
            wanted = rows[window.start : window.stop]
            span = slice(int(wanted.min()), int(wanted.max()) + 1)
            tokens = read_checked(path, member(group, "tokens"), span)[wanted - span.start]
            mask = (
                read_checked(path, member(group, "token_mask"), span)[wanted - span.start]
                if "token_mask" in group
                else np.ones(tokens.shape[:2], bool)
            )
            arrays += [torch.from_numpy(tokens), torch.from_numpy(mask)]
        return arrays

    def batches(self, batch_size: int, generator: torch.Generator | None = None) -> Iterator[Batch]:
        """(image tokens, text tokens, image mask, text mask) batches, as float32 on the device."""
        if self.resident is not None:
            yield from self._cut(self.resident, batch_size, generator)
            return
        order = (
            torch.randperm(len(self.windows), generator=generator).tolist()
            if generator is not None
            else list(range(len(self.windows)))
        )
        with ThreadPoolExecutor(max_workers=1) as reader:
            pending = reader.submit(self._load, self.windows[order[0]])
            for position in range(len(order)):
                arrays = pending.result()
                if position + 1 < len(order):
                    pending = reader.submit(self._load, self.windows[order[position + 1]])
                yield from self._cut(arrays, batch_size, generator)

    def _cut(
        self, arrays: list[torch.Tensor], batch_size: int, generator: torch.Generator | None
    ) -> Iterator[Batch]:
        image, image_mask, text, text_mask = arrays
        for index in batch_indices(len(image), batch_size, generator):
            # Positions padded in every row of the batch are dropped: masked keys change nothing.
            width = int(text_mask[index].any(0).nonzero().max()) + 1
            yield (
                image[index].to(self.device, non_blocking=True).float(),
                text[index, :width].to(self.device, non_blocking=True).float(),
                image_mask[index].to(self.device),
                text_mask[index, :width].to(self.device),
            )
