"""The cached Adaptor image path equals running the Adaptor, pooled and per patch, in both modes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from adaptor.cache.store import Layout, open_cache, write_all
from adaptor.errors import CacheMismatch
from adaptor.evaluate.features import write_adaptor_features
from adaptor.model.adaptor import Adaptor, AdaptorConfig


def _source(tmp_path: Path, tokens: bool) -> Path:
    rng = np.random.default_rng(0)
    grid = rng.normal(size=(10, 9, 12)).astype(np.float32)
    layout = Layout(dim=12, dtype="float32", token_shape=(9, 12) if tokens else None)
    ids = [f"s{i}" for i in range(10)]
    write_all(tmp_path / "image.zarr", ids, grid.mean(1), {"m": "x"}, layout, grid if tokens else None)
    return tmp_path / "image.zarr"


@pytest.mark.parametrize("mode", ["pooled", "tokens"])
def test_features_equal_the_adaptor_run_directly(tmp_path: Path, mode: str) -> None:
    torch.manual_seed(0)
    model = Adaptor(AdaptorConfig(image_dim=12, text_dim=4, mode=mode)).eval()
    source = open_cache(_source(tmp_path, tokens=True))
    assert write_adaptor_features(model, source, str(tmp_path / "out.zarr"), {"mode": mode}, shard_rows=4)
    features = open_cache(tmp_path / "out.zarr")
    grid, _ = source.tokens(source.ids.tolist())
    with torch.no_grad():
        pooled_input = torch.from_numpy(grid) if mode == "tokens" else torch.from_numpy(source.embeddings)
        pooled = model.encode_image(pooled_input).numpy()
        per_patch = model.encode_image_tokens(torch.from_numpy(grid)).numpy()
    assert features.ids.tolist() == source.ids.tolist()
    np.testing.assert_allclose(features.embeddings, pooled, rtol=1e-5, atol=1e-6)
    cached, _ = features.tokens(features.ids.tolist())
    assert cached.shape == (10, 9, 768)
    np.testing.assert_allclose(cached, per_patch, rtol=1e-5, atol=1e-5)


def test_patch_outputs_depend_on_the_other_patches() -> None:
    """Self-attention over the grid: changing one patch changes the others' outputs."""
    torch.manual_seed(0)
    model = Adaptor(AdaptorConfig(image_dim=12, text_dim=4)).eval()
    grid = torch.randn(1, 9, 12)
    changed = grid.clone()
    changed[0, 0] += 5
    with torch.no_grad():
        before, after = model.encode_image_tokens(grid), model.encode_image_tokens(changed)
    assert not torch.allclose(before[0, 1:], after[0, 1:], atol=1e-4)


def test_token_mode_refuses_a_cache_without_tokens(tmp_path: Path) -> None:
    model = Adaptor(AdaptorConfig(image_dim=12, text_dim=4, mode="tokens")).eval()
    with pytest.raises(CacheMismatch, match=r"embed\.tokens"):
        write_adaptor_features(model, open_cache(_source(tmp_path, tokens=False)), str(tmp_path / "o"), {})
