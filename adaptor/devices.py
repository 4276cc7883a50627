"""The device a job computes on: the GPU it was given (adaptor.gpus shows it only those), else the
CPU; and bf16 autocast on a GPU."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

CPU = torch.device("cpu")


def compute_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
