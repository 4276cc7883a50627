"""Data-parallel pre-training over several GPUs (DDP), with negatives optionally gathered across ranks.

Every rank holds the full cached arrays and walks the same permutation; rank r trains on the r-th
slice of each global batch. With ``gather_negatives`` every rank scores its rows against the whole
global batch (all_gather with gradients), so the loss and its gradient equal single-process training
on the global batch (tested with two CPU processes); without it each rank contrasts its slice only.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.distributed.nn.functional import all_gather
from torch.multiprocessing.spawn import spawn

from adaptor.model.loss import contrastive_loss


def rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def local_slice(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """This rank's equal share of a global batch (a remainder smaller than the world size is dropped)."""
    rank, world = rank_and_world()
    if world == 1:
        return batch
    share = len(batch[0]) // world
    return tuple(t[rank * share : (rank + 1) * share] for t in batch)


def batch_loss(
    image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor, weight: float, gather_negatives: bool
) -> torch.Tensor:
    """The paper's loss on this rank's rows; against the global batch when negatives are gathered."""
    rank, world = rank_and_world()
    if world == 1 or not gather_negatives:
        return contrastive_loss(image, text, scale, weight)
    every_image, every_text = torch.cat(all_gather(image)), torch.cat(all_gather(text))
    targets = torch.arange(len(image), device=image.device) + rank * len(image)
    text_to_image = F.cross_entropy(scale * text @ every_image.T, targets)
    image_to_text = F.cross_entropy(scale * image @ every_text.T, targets)
    return weight * text_to_image + (1 - weight) * image_to_text


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _worker(
    rank: int, world: int, port: int, backend: str, function: Callable[..., Any], args: tuple[Any, ...]
) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    dist.init_process_group(backend, rank=rank, world_size=world)
    if backend == "nccl":
        torch.cuda.set_device(rank)
    try:
        function(*args)
    finally:
        dist.destroy_process_group()


def launch(
    function: Callable[..., Any], args: tuple[Any, ...], world: int, backend: str | None = None
) -> None:
    """Run ``function(*args)`` on ``world`` processes (one per GPU with NCCL, or gloo on CPU)."""
    if world == 1:
        function(*args)
        return
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    spawn(_worker, args=(world, _free_port(), backend, function, args), nprocs=world)
