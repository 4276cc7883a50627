import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from safetensors.torch import load_file

from adaptor.cache import store
from adaptor.cache.store import Layout, open_cache, write_all
from adaptor.model.adaptor import Adaptor, AdaptorConfig, count_parameters, load_adaptor
from adaptor.train.pairs import TokenPairs
from adaptor.train.pretrain import PretrainSettings, linear_warmup_decay, pretrain

SMALL = {"width": 64, "heads": 4, "ffn": 128}  # trains in seconds; the paper's size is counted apart


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
    settings = PretrainSettings(epochs=15, batch_size=16, lr=3e-4, patience=20, architecture=SMALL)
    metrics = pretrain(manifest, open_cache(image), open_cache(text), settings, tmp_path / "run")
    history = metrics["history"]
    assert metrics["best_val_loss"] < history[0]["val_loss"] * 0.8
    assert metrics["best_val_loss"] < metrics["chance_val_loss"] == pytest.approx(np.log(16))
    weights = load_file(tmp_path / "run" / "weights.safetensors")
    assert sum(t.numel() for t in weights.values()) == metrics["trainable_parameters"]
    model = load_adaptor(tmp_path / "run")
    assert model.encode_image(torch.zeros(3, 24)).shape == (3, 64)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs_run"] == 15
    retrieval = metrics["retrieval"]  # 16 validation pairs: chance R@1 = 1/16, R@5 = 5/16
    assert retrieval["image_to_text/R@1"] > 0.4 and retrieval["text_to_image/R@5"] > 0.8


def _token_caches(tmp_path: Path, n: int = 96) -> tuple[pl.DataFrame, Path, Path]:
    """Token arrays sharing a latent factor per pair; reports padded to 6 tokens with random lengths."""
    rng = np.random.default_rng(1)
    latent = rng.normal(size=(n, 1, 8))
    image = (latent @ rng.normal(size=(8, 24)) + 0.3 * rng.normal(size=(n, 4, 24))).astype(np.float32)
    text = (latent @ rng.normal(size=(8, 16)) + 0.3 * rng.normal(size=(n, 6, 16))).astype(np.float32)
    mask = np.arange(6)[None] < rng.integers(3, 7, size=n)[:, None]
    ids = [f"s{i}" for i in range(n)]
    for name, tokens, token_mask in (("img", image, None), ("txt", text * mask[..., None], mask)):
        layout = Layout(
            dim=1,
            shard_rows=32,
            chunk_rows=16,
            dtype="float32",
            token_shape=tokens.shape[1:],
            token_mask=token_mask is not None,
        )
        group = store.create(tmp_path / f"{name}.zarr", ids, layout, {"m": name})
        for shard, (start, stop) in enumerate(store.shard_bounds(n, 32)):
            arrays = {"embeddings": np.zeros((stop - start, 1)), "tokens": tokens[start:stop]}
            if token_mask is not None:
                arrays["token_mask"] = token_mask[start:stop]
            store.write_shard(group, shard, arrays)
        store.finalize(tmp_path / f"{name}.zarr")
    manifest = pl.DataFrame({"id": ids, "split": ["val" if i % 6 == 0 else "train" for i in range(n)]})
    return manifest, tmp_path / "img.zarr", tmp_path / "txt.zarr"


def test_token_mode_trains_on_token_arrays(tmp_path: Path) -> None:
    manifest, image, text = _token_caches(tmp_path)
    settings = PretrainSettings(epochs=8, batch_size=16, lr=3e-4, mode="tokens", architecture=SMALL)
    metrics = pretrain(manifest, open_cache(image), open_cache(text), settings, tmp_path / "run")
    small = Adaptor(AdaptorConfig(24, 16, **SMALL, mode="tokens"))
    assert metrics["mode"] == "tokens" and metrics["trainable_parameters"] == count_parameters(small)
    assert metrics["best_val_loss"] < metrics["history"][0]["val_loss"] * 0.8


def test_the_token_mode_adds_two_summary_tokens_to_the_published_adaptor() -> None:
    published = 24 * 768 + 16 * 768 + 2 * 5_513_984 + 1
    assert count_parameters(Adaptor(AdaptorConfig(24, 16, mode="tokens"))) == published + 2 * 768


def test_a_smaller_architecture_is_trained_saved_and_loaded(tmp_path: Path) -> None:
    manifest, image, text = _caches(tmp_path)
    small = {"width": 32, "layers": 1, "heads": 2, "ffn": 64, "dropout": 0.0}
    settings = PretrainSettings(epochs=2, batch_size=16, lr=3e-4, architecture=small)
    metrics = pretrain(manifest, open_cache(image), open_cache(text), settings, tmp_path / "run")
    layer = 4 * 32 * 32 + 4 * 32 + 2 * 32 * 64 + 64 + 32 + 4 * 32
    assert metrics["trainable_parameters"] == 24 * 32 + 16 * 32 + layer + 1
    model = load_adaptor(tmp_path / "run")
    assert model.config.layers == 1 and model.encode_image(torch.zeros(3, 24)).shape == (3, 32)


def test_token_pairs_stream_every_pair_once_when_over_budget(tmp_path: Path) -> None:
    manifest, image, text = _token_caches(tmp_path)
    ids = manifest["id"].to_list()
    caches = open_cache(image), open_cache(text)
    resident = TokenPairs(*caches, ids, torch.device("cpu"), ram_budget_bytes=1 << 30)
    streamed = TokenPairs(*caches, ids, torch.device("cpu"), ram_budget_bytes=20_000)
    assert not resident.streamed and streamed.streamed and len(streamed.windows) > 2
    generator = torch.Generator().manual_seed(0)
    totals = [sum(batch[0].sum(0) for batch in pairs.batches(8, generator)) for pairs in (resident, streamed)]
    assert torch.allclose(totals[0], totals[1], atol=1e-3)
    assert streamed.batch_sizes(8) == [len(batch[0]) for batch in streamed.batches(8, generator)]


def test_training_is_deterministic_on_cpu_where_bf16_changes_nothing(tmp_path: Path) -> None:
    """Two runs give the same history; bf16 (autocast on a GPU only) trains a CPU run in fp32."""
    manifest, image, text = _caches(tmp_path)
    settings = PretrainSettings(epochs=2, batch_size=16, lr=1e-4, architecture=SMALL, precision="bf16")
    first = pretrain(manifest, open_cache(image), open_cache(text), settings, tmp_path / "a")
    second = pretrain(manifest, open_cache(image), open_cache(text), settings, tmp_path / "b")
    fp32 = PretrainSettings(epochs=2, batch_size=16, lr=1e-4, architecture=SMALL, precision="fp32")
    third = pretrain(manifest, open_cache(image), open_cache(text), fp32, tmp_path / "c")
    assert first["history"] == second["history"] == third["history"]


def test_early_stopping(tmp_path: Path) -> None:
    manifest, image, text = _caches(tmp_path)
    settings = PretrainSettings(epochs=50, batch_size=16, lr=5e-3, patience=2, architecture=SMALL)
    metrics = pretrain(manifest, open_cache(image), open_cache(text), settings, tmp_path / "run")
    assert metrics["epochs_run"] == metrics["best_epoch"] + 3 < 50


def test_schedule_warms_up_then_decays_over_the_real_step_count() -> None:
    factor = linear_warmup_decay(total_steps=100, warmup_fraction=0.02)
    assert [factor(0), factor(1)] == [0.5, 1.0]
    assert factor(51) == pytest.approx(0.5)
    assert factor(100) == 0.0
