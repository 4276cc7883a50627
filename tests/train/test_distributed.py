"""Two CPU processes (gloo) stand in for two GPUs: gathered negatives equal the single-process batch."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import torch

from adaptor.cache.store import Layout, write_all
from adaptor.model.loss import contrastive_loss

SCRIPT = """
import json
import sys
from pathlib import Path

import polars as pl
import torch
import torch.distributed as dist
import torch.nn.functional as F

from adaptor.cache.store import open_cache
from adaptor.train.distributed import batch_loss, launch, local_slice, rank_and_world
from adaptor.train.pretrain import PretrainSettings, pretrain

root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path()


def gradients() -> None:
    rank, world = rank_and_world()
    inputs = torch.load(root / "inputs.pt", weights_only=True)
    image, text = (t.clone().requires_grad_(True) for t in local_slice((inputs["image"], inputs["text"])))
    loss = batch_loss(F.normalize(image, dim=-1), F.normalize(text, dim=-1), torch.tensor(10.0), 0.75, True)
    loss.backward()  # all_gather's backward hands each rank the other ranks' gradients for its rows
    dist.all_reduce(loss_sum := loss.detach().clone())
    # DDP averages over ranks: the gradient of the mean of the ranks' losses
    image_grad, text_grad = (image.grad / world).tolist(), (text.grad / world).tolist()
    result = {"loss": loss_sum.item() / world, "image": image_grad, "text": text_grad}
    (root / f"rank{rank}.json").write_text(json.dumps(result))


def train() -> None:
    small = {"width": 64, "heads": 4, "ffn": 128}  # the ranks' agreement does not depend on the size
    settings = PretrainSettings(epochs=4, batch_size=16, lr=3e-4, architecture=small)
    pretrain(pl.read_parquet(root / "manifest.parquet"), open_cache(root / "img.zarr"),
             open_cache(root / "txt.zarr"), settings, root / "run")


def both() -> None:
    gradients()
    train()


if __name__ == "__main__":
    launch(both, (), world=2, backend="gloo")  # one spawn: each process imports torch once
"""


def test_two_ranks_with_gathered_negatives_equal_one_process(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(0)
    image, text = torch.randn(8, 6, generator=generator), torch.randn(8, 6, generator=generator)
    torch.save({"image": image, "text": text}, tmp_path / "inputs.pt")
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(96, 8))
    ids = [f"s{i}" for i in range(96)]
    for name, width in (("img", 24), ("txt", 16)):
        values = latent @ rng.normal(size=(8, width)) + 0.1 * rng.normal(size=(96, width))
        write_all(tmp_path / f"{name}.zarr", ids, values, {"m": name}, Layout(dim=width, dtype="float32"))
    split = ["val" if i % 6 == 0 else "train" for i in range(96)]
    pl.DataFrame({"id": ids, "split": split}).write_parquet(tmp_path / "manifest.parquet")

    (tmp_path / "ranks.py").write_text(SCRIPT)
    command = [sys.executable, str(tmp_path / "ranks.py"), str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]

    leaves = image.clone().requires_grad_(True), text.clone().requires_grad_(True)
    loss = contrastive_loss(*(torch.nn.functional.normalize(t, dim=-1) for t in leaves), torch.tensor(10.0))
    loss.backward()
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["loss"] == ranks[1]["loss"] and abs(ranks[0]["loss"] - loss.item()) < 1e-5
    for rank, found in enumerate(ranks):
        rows = slice(4 * rank, 4 * rank + 4)
        np.testing.assert_allclose(found["image"], leaves[0].grad[rows].numpy(), atol=1e-6)
        np.testing.assert_allclose(found["text"], leaves[1].grad[rows].numpy(), atol=1e-6)

    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["epochs_run"] == 4
    assert metrics["best_val_loss"] < metrics["history"][0]["val_loss"]
