"""Which decoder a segmentation cell trains, and where its inputs come from: cached stage maps, stage
maps computed in the job, or patch tokens."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from adaptor.cache.store import Cache, open_cache
from adaptor.data.demo.render import render
from adaptor.encoders.embed import EmbedSettings, embed_manifest
from adaptor.encoders.registry import EncoderSpec, LoadedEncoder, load_encoder
from adaptor.errors import SettingsError
from adaptor.evaluate.decoder_inputs import choose
from adaptor.evaluate.segmentation import Decoder

CPU = torch.device("cpu")
CNN = EncoderSpec("r", "image", "timm", "resnet10t", weights="random", preprocess={"resize": 40, "crop": 32})
VIT = EncoderSpec(
    "v",
    "image",
    "timm",
    "vit_tiny_patch16_224",
    weights="random",
    model_kwargs={"img_size": 32},
    preprocess={"resize": 32, "crop": 32},
)


def _frame(root: Path, count: int = 5) -> pl.DataFrame:
    from PIL import Image

    paths = [root / f"{index}.png" for index in range(count)]
    for index, path in enumerate(paths):
        Image.fromarray(render([], seed=index, size=48).pixels).save(path)
    return pl.DataFrame({"id": [f"s{i}" for i in range(count)], "path": [str(p) for p in paths]})


def _cache(encoder: LoadedEncoder, frame: pl.DataFrame, path: Path, **settings: bool) -> Cache:
    embed_manifest(encoder, frame, path, EmbedSettings(num_workers=0, shard_rows=4, chunk_rows=2, **settings))
    return open_cache(path)


def _unexpected_load() -> LoadedEncoder:
    raise AssertionError("the stage maps are cached: the encoder must not be loaded")


def test_auto_reads_a_cnns_cached_stage_maps_or_computes_the_same_ones_once_in_the_job(
    tmp_path: Path,
) -> None:
    frame, encoder = _frame(tmp_path), load_encoder(CNN)
    cached = _cache(encoder, frame, tmp_path / "stages.zarr", stages=True)
    plain = _cache(encoder, frame, tmp_path / "plain.zarr")
    ids = ["s3", "s0", "s3"]

    decoder, inputs = choose("auto", cached, cached, False, _unexpected_load, frame, CPU)
    assert decoder == Decoder("unet") and cached.stage_count == 5
    stored = inputs(ids)
    assert [a.dtype for a in stored] == [np.float16] * 5 and [len(a) for a in stored] == [3] * 5

    decoder, inputs = choose("auto", plain, plain, False, lambda: encoder, frame, CPU)
    assert decoder == Decoder("unet")
    computed = inputs(ids)
    for ours, theirs in zip(computed, stored, strict=True):
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        np.testing.assert_allclose(ours.astype(np.float32), theirs.astype(np.float32), rtol=1e-2, atol=1e-2)
    for path in frame["path"]:  # computed once: read again, the maps need no image
        Path(path).unlink()
    assert all(np.array_equal(a, b) for a, b in zip(inputs(ids), computed, strict=True))


def test_the_adaptor_methods_add_the_adaptor_vector_and_the_frozen_method_does_not(tmp_path: Path) -> None:
    frame, encoder = _frame(tmp_path), load_encoder(CNN)
    image = _cache(encoder, frame, tmp_path / "stages.zarr", stages=True)
    adaptor = _cache(load_encoder(VIT), frame, tmp_path / "adaptor.zarr")  # any cache of vectors
    decoder, inputs = choose("unet", adaptor, image, True, _unexpected_load, frame, CPU)
    assert decoder == Decoder("unet", adaptor=True)
    *stages, vectors = inputs(["s1", "s4"])
    assert len(stages) == 5 and np.array_equal(vectors, adaptor.embeddings[adaptor.rows(["s1", "s4"])])
    assert len(choose("unet", image, image, False, _unexpected_load, frame, CPU)[1](["s1"])) == 5


def test_a_vit_gets_the_conv_decoder_on_its_tokens_and_no_unet(tmp_path: Path) -> None:
    frame, vit = _frame(tmp_path), load_encoder(VIT)
    with_tokens = _cache(vit, frame, tmp_path / "tokens.zarr", tokens=True, stages=True)
    assert with_tokens.stage_count == 0  # a ViT has no pyramid: embed.stages caches nothing for it
    decoder, inputs = choose("auto", with_tokens, with_tokens, False, lambda: vit, frame, CPU)
    assert decoder == Decoder("conv")
    assert np.array_equal(inputs(["s2"])[0], with_tokens.tokens(["s2"])[0])
    without = _cache(vit, frame, tmp_path / "plain.zarr")
    with pytest.raises(
        SettingsError, match="no patch tokens for the conv decoder; add the dataset to embed.tokens"
    ):
        choose("auto", without, without, False, lambda: vit, frame, CPU)
    with pytest.raises(SettingsError, match="unet needs a CNN's pyramid of stage maps; v has none"):
        choose("unet", with_tokens, with_tokens, False, lambda: vit, frame, CPU)
    with pytest.raises(SettingsError, match="decoder.kind: one of"):
        choose("fcn", with_tokens, with_tokens, False, lambda: vit, frame, CPU)
