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
from adaptor.errors import ImageError, SettingsError
from adaptor.evaluate.decoder_inputs import choose
from adaptor.evaluate.segmentation import Decoder, Held, Streamed

CPU = torch.device("cpu")
GB = 10**9
CNN = EncoderSpec("r", "image", "timm", "resnet10t", weights="random", preprocess={"resize": 40, "crop": 32})


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

    decoder, inputs = choose("auto", cached, cached, False, _unexpected_load, frame, CPU, GB)
    assert decoder == Decoder("unet") and cached.stage_count == 5
    stored = inputs(ids).take(slice(None))
    assert [a.dtype for a in stored] == [np.float16] * 5 and [len(a) for a in stored] == [3] * 5

    decoder, inputs = choose("auto", plain, plain, False, lambda: encoder, frame, CPU, GB)
    assert decoder == Decoder("unet") and isinstance(inputs(ids), Held)
    computed = inputs(ids).take(slice(None))
    for ours, theirs in zip(computed, stored, strict=True):
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        np.testing.assert_allclose(ours.astype(np.float32), theirs.astype(np.float32), rtol=1e-2, atol=1e-2)

    _, named = choose("unet", plain, plain, False, lambda: encoder, frame, CPU, GB, [1, 4])
    for ours, theirs in zip(named(ids).take(slice(None)), [computed[1], computed[4]], strict=True):
        np.testing.assert_array_equal(ours, theirs)

    per_sample = sum(np.prod(shape) for shape in encoder.stage_shapes()) * 2
    small = int(per_sample * (len(frame) - 1))  # all but one sample's maps fit
    _, streamed = choose("unet", plain, plain, False, lambda: encoder, frame, CPU, small)
    rows = streamed(ids)
    assert isinstance(rows, Streamed) and len(rows) == 3
    for ours, theirs in zip(rows.take(np.array([2, 1])), computed, strict=True):
        np.testing.assert_array_equal(ours, theirs[[2, 1]])
    with pytest.raises(SettingsError, match=r"maps of 5 samples take .* drop the dataset from embed\.stages"):
        choose("auto", cached, cached, False, _unexpected_load, frame, CPU, small)

    for path in frame["path"]:  # held maps were computed once: read again, they need no image
        Path(path).unlink()
    assert all(np.array_equal(a, b) for a, b in zip(inputs(ids).take(slice(None)), computed, strict=True))
    with pytest.raises(ImageError, match=r"3\.png: image file is missing \(1 images"):  # computed per batch
        rows.take(np.array([0]))


def test_the_adaptor_methods_add_the_adaptor_vector_and_the_frozen_method_does_not(
    tmp_path: Path, tiny_vit: LoadedEncoder
) -> None:
    frame, encoder = _frame(tmp_path), load_encoder(CNN)
    image = _cache(encoder, frame, tmp_path / "stages.zarr", stages=True)
    adaptor = _cache(tiny_vit, frame, tmp_path / "adaptor.zarr")  # any cache of vectors
    decoder, inputs = choose("unet", adaptor, image, True, _unexpected_load, frame, CPU, GB)
    assert decoder == Decoder("unet", adaptor=True)
    *stages, vectors = inputs(["s1", "s4"]).take(slice(None))
    assert len(stages) == 5 and np.array_equal(vectors, adaptor.embeddings[adaptor.rows(["s1", "s4"])])
    frozen = choose("unet", image, image, False, _unexpected_load, frame, CPU, GB)[1]
    assert len(frozen(["s1"]).take(slice(None))) == 5


def test_a_vit_gets_the_conv_decoder_on_its_tokens_and_no_unet(
    tmp_path: Path, tiny_vit: LoadedEncoder
) -> None:
    frame, vit = _frame(tmp_path), tiny_vit
    with_tokens = _cache(vit, frame, tmp_path / "tokens.zarr", tokens=True, stages=True)
    assert with_tokens.stage_count == 0  # a ViT has no pyramid: embed.stages caches nothing for it
    decoder, inputs = choose("auto", with_tokens, with_tokens, False, lambda: vit, frame, CPU, GB)
    assert decoder == Decoder("conv")
    assert np.array_equal(inputs(["s2"]).take(slice(None))[0], with_tokens.tokens(["s2"])[0])
    without = _cache(vit, frame, tmp_path / "plain.zarr")
    with pytest.raises(
        SettingsError, match=r"no patch tokens for the conv decoder; add the dataset to embed\.tokens"
    ):
        choose("auto", without, without, False, lambda: vit, frame, CPU, GB)
    with pytest.raises(SettingsError, match="unet needs a CNN's pyramid of stage maps; v has none"):
        choose("unet", with_tokens, with_tokens, False, lambda: vit, frame, CPU, GB)
    with pytest.raises(SettingsError, match=r"decoder\.kind: one of"):
        choose("fcn", with_tokens, with_tokens, False, lambda: vit, frame, CPU, GB)
