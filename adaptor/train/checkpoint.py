"""Resumable training state in safetensors + JSON (no pickles): weights, optimiser, RNG, progress,
and the best weights so far.

A checkpoint is committed by atomically replacing ``last.json``, written after the tensors it names,
so a kill at any moment leaves either the previous checkpoint or the new one, never half of one.
The best weights live in the checkpoint folder too, because the workflow's output file can be
deleted under a finished checkpoint (Snakemake removes the outputs of a failed or forced job):
a resumed run always has the best weights to write out again.
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


def _weights_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's parameters and buffers as contiguous CPU tensors, ready for safetensors."""
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def save(
    folder: Path,
    model: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    generator: torch.Generator,
    progress: dict[str, Any],
    improved: bool,
) -> None:
    """Write the state after an epoch (and the weights, when they are the best so far) and point
    ``last.json`` at both; files no longer named are removed."""
    folder.mkdir(parents=True, exist_ok=True)
    previous = json.loads((folder / POINTER).read_text()) if (folder / POINTER).exists() else {}
    best, weights = previous.get("best"), _weights_of(model)
    if improved:
        best = f"best-{progress['epoch']:04d}.safetensors"
        save_file(weights, folder / best)
    tensors = {f"model.{k}": v for k, v in weights.items()}
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
    pointer = {"tensors": name, "best": best, "param_groups": optimiser_state["param_groups"]}
    _write_json(folder / POINTER, pointer | {"progress": progress})
    for old in [*folder.glob("state-*.safetensors"), *folder.glob("best-*.safetensors")]:
        if old.name not in (name, best):
            old.unlink()


def best_weights(folder: Path) -> Path:
    """The best weights named by the last committed checkpoint."""
    pointer = folder / POINTER
    best = json.loads(pointer.read_text()).get("best") if pointer.exists() else None
    if best is None or not (folder / best).exists():
        raise FileNotFoundError(
            f"{folder}: the checkpoint holds no best weights (written by an older version, or edited); "
            "delete the folder to train again from the start"
        )
    return folder / str(best)


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
    return dict(meta["progress"])
