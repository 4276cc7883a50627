import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from safetensors.torch import load_file

from adaptor.cache.store import Layout, open_cache, write_all
from adaptor.train.pretrain import (
    PretrainSettings,
    adaptor_features,
    linear_warmup_decay,
    load_adaptor,
    pretrain,
)


def _caches(tmp_path: Path, n: int = 96) -> tuple[pl.DataFrame, Path, Path]:
    """Paired features that share a latent factor, so alignment is learnable; text rows shuffled."""
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(n, 8))
    image = latent @ rng.normal(size=(8, 24)) + 0.1 * rng.normal(size=(n, 24))
    text = latent @ rng.normal(size=(8, 16)) + 0.1 * rng.normal(size=(n, 16))
    ids = [f"s{i}" for i in range(n)]
    order = rng.permutation(n)
    for name, values, row_ids in (
        ("img", image, ids),
        ("txt", text[order], [ids[i] for i in order]),
    ):
        layout = Layout(dim=values.shape[1], dtype="float32")
        write_all(tmp_path / f"{name}.zarr", row_ids, values, {"m": name}, layout)
    manifest = pl.DataFrame({"id": ids, "split": ["val" if i % 6 == 0 else "train" for i in range(n)]})
    return manifest, tmp_path / "img.zarr", tmp_path / "txt.zarr"


def test_training_improves_validation_loss_and_keeps_trainable_weights(tmp_path: Path) -> None:
    manifest, image, text = _caches(tmp_path)
    settings = PretrainSettings(epochs=15, batch_size=16, lr=3e-4, patience=20)
    metrics = pretrain(manifest, open_cache(image), open_cache(text), settings, tmp_path / "run")
    history = metrics["history"]
    assert metrics["best_val_loss"] < history[0]["val_loss"] * 0.8
    assert metrics["best_val_loss"] < np.log(16)  # chance is log(batch) for a full batch
    weights = load_file(tmp_path / "run" / "pooled.safetensors")
    assert sum(t.numel() for t in weights.values()) == metrics["trainable_parameters"]
    model = load_adaptor(tmp_path / "run")
    assert adaptor_features(model, np.zeros((3, 24), dtype=np.float32)).shape == (3, 768)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs_run"] == 15


def test_training_is_deterministic_on_cpu(tmp_path: Path) -> None:
    manifest, image, text = _caches(tmp_path)
    settings = PretrainSettings(epochs=2, batch_size=16, lr=1e-4)
    first = pretrain(manifest, open_cache(image), open_cache(text), settings, tmp_path / "a")
    second = pretrain(manifest, open_cache(image), open_cache(text), settings, tmp_path / "b")
    assert first["history"] == second["history"]


def test_early_stopping(tmp_path: Path) -> None:
    manifest, image, text = _caches(tmp_path)
    settings = PretrainSettings(epochs=50, batch_size=16, lr=5e-3, patience=2)
    metrics = pretrain(manifest, open_cache(image), open_cache(text), settings, tmp_path / "run")
    assert metrics["epochs_run"] == metrics["best_epoch"] + 3 < 50


def test_schedule_warms_up_then_decays_over_the_real_step_count() -> None:
    factor = linear_warmup_decay(total_steps=100, warmup_fraction=0.02)
    assert [factor(0), factor(1)] == [0.5, 1.0]
    assert factor(51) == pytest.approx(0.5)
    assert factor(100) == 0.0
