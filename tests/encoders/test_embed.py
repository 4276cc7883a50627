from pathlib import Path

import numpy as np
import polars as pl
import timm
from safetensors.torch import save_file

from adaptor.cache.store import open_cache
from adaptor.data.demo.render import render
from adaptor.data.demo.writers import _save
from adaptor.encoders.embed import embed_manifest
from adaptor.encoders.registry import EncoderSpec, load_encoder


def test_embedding_writes_ids_vectors_and_identity(tmp_path: Path) -> None:
    paths = []
    for index in range(7):
        paths.append(str(tmp_path / f"{index}.png"))
        _save(Path(paths[-1]), render([], seed=index, size=48).pixels)
    frame = pl.DataFrame({"id": [f"s{i}" for i in range(7)], "path": paths})
    weights = tmp_path / "w.safetensors"
    save_file(timm.create_model("resnet10t", num_classes=0).state_dict(), weights)
    spec = EncoderSpec(
        "r",
        "image",
        "timm",
        "resnet10t",
        weights=str(weights),
        preprocess={"resize": 40, "crop": 32},
        batch_size=3,
    )
    encoder = load_encoder(spec)
    embed_manifest(encoder, frame, tmp_path / "a.zarr", num_workers=0, shard_rows=4, dtype="float32")
    embed_manifest(
        encoder, frame.reverse(), tmp_path / "b.zarr", num_workers=0, shard_rows=2, dtype="float32"
    )
    first, second = open_cache(tmp_path / "a.zarr"), open_cache(tmp_path / "b.zarr")
    assert first.ids.tolist() == frame["id"].to_list()
    assert first.embeddings.shape == (7, encoder.dim)
    np.testing.assert_allclose(
        first.embeddings[first.rows(["s5"])], second.embeddings[second.rows(["s5"])], atol=1e-5
    )
    assert first.attrs["identity"]["weights_sha256"] == encoder.weights_sha256
    assert first.attrs["key"] != second.attrs["key"]  # another id order is another manifest


def test_length_sorted_text_batches_keep_the_input_order(tmp_path: Path, tiny_bert: Path) -> None:
    spec = EncoderSpec(
        "b", "text", "transformers", "tiny", weights=str(tiny_bert), pooling="mean", batch_size=2
    )
    encoder = load_encoder(spec)
    texts = ["heart", "no effusion lung normal heart", "lung", "normal heart lung", "no"]
    frame = pl.DataFrame({"id": [f"t{i}" for i in range(5)], "text": texts})
    embed_manifest(encoder, frame, tmp_path / "t.zarr", shard_rows=4, dtype="float32")
    cache = open_cache(tmp_path / "t.zarr")
    for index, text in enumerate(texts):
        tokens = encoder.tokenizer([text], return_tensors="pt")
        alone = encoder.module(tokens["input_ids"], tokens["attention_mask"]).detach().numpy()[0]
        np.testing.assert_allclose(cache.embeddings[index], alone, atol=1e-5)
