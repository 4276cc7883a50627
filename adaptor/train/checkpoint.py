"""Resumable training state in safetensors + JSON (no pickles): weights, optimiser, RNG, progress.

A checkpoint is committed by atomically replacing ``last.json``, written after the tensors it names,
so a kill at any moment leaves either the previous checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

POINTER = "last.json"


def _write_json(path: Path, value: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(value, indent=1))
    os.replace(temporary, path)


def save(
    folder: Path,
    model: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    generator: torch.Generator,
    progress: dict[str, Any],
) -> None:
    """Write the state after an epoch and point ``last.json`` at it; older states are removed."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    optimiser_state = optimiser.state_dict()
    for index, state in optimiser_state["state"].items():
        for name, value in state.items():
            tensors[f"optimiser.{index}.{name}"] = value.detach().cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.generator"] = generator.get_state()
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    name = f"state-{progress['epoch']:04d}.safetensors"
    save_file(tensors, folder / name)
    _write_json(
        folder / POINTER,
        {"tensors": name, "param_groups": optimiser_state["param_groups"], "progress": progress},
    )
    for old in folder.glob("state-*.safetensors"):
        if old.name != name:
            old.unlink()


def read_progress(folder: Path) -> dict[str, Any] | None:
    """The progress recorded by the last committed checkpoint, without loading its tensors."""
    pointer = folder / POINTER
    return json.loads(pointer.read_text())["progress"] if pointer.exists() else None


def load(
    folder: Path,
    model: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    generator: torch.Generator,
) -> dict[str, Any]:
    """Restore the last committed state into the given objects and return its progress."""
    meta = json.loads((folder / POINTER).read_text())
    tensors = load_file(folder / meta["tensors"])
    model.load_state_dict({k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")})
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimiser."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    optimiser.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    generator.set_state(tensors["rng.generator"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    return meta["progress"]
