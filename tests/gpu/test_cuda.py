"""The CUDA path, on a machine with a GPU (``pytest -m gpu``; benchmarks/gpu_check.sh runs these):
JPEGs decoded by nvJPEG, the embedding stage, bf16 pre-training, heads and decoders on the device,
faiss on the GPU. Skipped where torch sees no GPU; the CPU suite checks the same code with
device="cpu"."""

from pathlib import Path

import faiss
import numpy as np
import polars as pl
import pytest
import torch
from PIL import Image

from adaptor.cache.complete import finalize_cache
from adaptor.cache.store import Layout, open_cache, write_all
from adaptor.data.device_images import decode_greys, geometry, read_jpeg
from adaptor.data.images import Preprocess, read_grey
from adaptor.encoders.embed import EmbedSettings, embed_part, init_cache
from adaptor.encoders.registry import LoadedEncoder
from adaptor.evaluate import probe, segmentation
from adaptor.train.pretrain import PretrainSettings, pretrain
from adaptor.train.retrieval import _search

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on a GPU machine)"),
]
CUDA, CPU = torch.device("cuda"), torch.device("cpu")


def _radiographs(folder: Path, count: int, size: tuple[int, int] = (1200, 1000)) -> list[str]:
    paths = []
    for index in range(count):
        rng = np.random.default_rng(index)
        coarse = rng.normal(128, 40, (size[0] // 100 + 2, size[1] // 100 + 2)).clip(0, 255).astype(np.uint8)
        smooth = np.asarray(Image.fromarray(coarse).resize((size[1], size[0]), Image.Resampling.BICUBIC))
        paths.append(str(folder / f"{index}.jpg"))
        Image.fromarray(smooth).convert("RGB" if index == 1 else "L").save(paths[-1], quality=95)
    return paths


def test_nvjpeg_decodes_as_the_cpu_does_but_for_the_idct(tmp_path: Path) -> None:
    paths = _radiographs(tmp_path, 4)
    preprocess = Preprocess(256, 224)
    datas = [read_jpeg(path) for path in paths]
    on_gpu = decode_greys(datas, paths, CUDA)  # type: ignore[arg-type]
    for path, grey in zip(paths, on_gpu, strict=True):
        assert isinstance(grey, torch.Tensor) and grey.device.type == "cuda"
        ours = geometry(grey, preprocess).cpu() * 255
        theirs = torch.from_numpy(preprocess.geometry(read_grey(path))).float()
        assert (ours - theirs).abs().max() <= 3 and (ours - theirs).abs().mean() < 0.5, path


def test_the_embedding_stage_on_the_gpu_agrees_with_the_cpu_path(
    tmp_path: Path, efficientnet_lite0: LoadedEncoder
) -> None:
    """Decoded by nvJPEG and encoded under bf16 autocast, against PIL and fp32 on the CPU."""
    paths = _radiographs(tmp_path, 12)
    frame = pl.DataFrame({"id": [f"s{i}" for i in range(12)], "path": paths})
    encoder = efficientnet_lite0
    settings = EmbedSettings(num_workers=2, shard_rows=8, dtype="float32", decode="auto")
    init_cache(encoder, frame, tmp_path / "c.zarr", settings)
    report = embed_part(encoder, frame, tmp_path / "c.zarr", settings)
    assert report["device"].startswith("cuda") and report["decode"] == "device"
    assert 0 < report["gpu_busy_share"] <= 1
    assert finalize_cache(tmp_path / "c.zarr", frame, "demo", "image").is_empty()
    cached = open_cache(tmp_path / "c.zarr").embeddings
    module = encoder.inference_module().to(CPU).float()
    with torch.inference_mode():
        reference = module(torch.stack([encoder.spec.preprocess(read_grey(p)) for p in paths]))[0].numpy()
    cosine = (cached * reference).sum(1) / np.linalg.norm(cached, axis=1) / np.linalg.norm(reference, axis=1)
    assert cosine.min() >= 0.99, cosine  # bf16 autocast on the GPU against fp32 on the CPU


def test_pretraining_runs_in_bf16_on_the_gpu(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    ids = [f"s{i}" for i in range(2304)]
    for name in ("image", "text"):
        values = rng.normal(size=(len(ids), 768)).astype(np.float16)
        write_all(tmp_path / f"{name}.zarr", ids, values, {"m": name}, Layout(dim=768))
    manifest = pl.DataFrame({"id": ids, "split": ["train"] * 2048 + ["val"] * 256})
    settings = PretrainSettings(epochs=2, batch_size=1024, precision="bf16")
    image, text = (open_cache(tmp_path / f"{name}.zarr") for name in ("image", "text"))
    metrics = pretrain(manifest, image, text, settings, tmp_path / "run")
    assert np.isfinite(metrics["best_val_loss"]) and metrics["train_samples_per_second"] > 0


def test_heads_and_decoders_train_on_the_gpu() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(64, 32)).astype(np.float32)
    labels = (features[:, :1] > 0).astype(np.float32)
    split = ((features[:40], labels[:40]), (features[40:52], labels[40:52]), (features[52:], labels[52:]))
    result = probe.train_and_test("binary", ("p",), *split, probe.HeadSettings(max_epochs=3), 0, CUDA)
    assert result["test_scores"].shape == (12, 1)
    tokens = rng.normal(size=(12, 16, 8)).astype(np.float32)
    masks = (rng.random((12, 32, 32)) > 0.8).astype(np.float32)
    stages = [rng.normal(size=(12, 4, 32, 32)), rng.normal(size=(12, 8, 16, 16))]
    decoder = segmentation.DecoderSettings(max_epochs=2, channels=(16, 8, 8, 8, 8), unet_widths=(8, 8))
    for inputs, kind in (([tokens], "conv"), (stages, "unet")):

        def part(rows: slice, inputs: list[np.ndarray] = inputs) -> tuple[segmentation.Held, np.ndarray]:
            return segmentation.Held([array[rows] for array in inputs]), masks[rows]

        arrays = part(slice(0, 8)), part(slice(8, 10)), part(slice(10, 12))
        result = segmentation.train_and_test(*arrays, decoder, 0, CUDA, segmentation.Decoder(kind))
        assert result["test_probabilities"].shape == (2, 32, 32)


def test_faiss_searches_on_the_gpu() -> None:
    assert faiss.get_num_gpus() > 0, "faiss sees no GPU: install the gpu extra (faiss-gpu), not faiss-cpu"
    rng = np.random.default_rng(0)
    vectors, queries = rng.normal(size=(2000, 64)), rng.normal(size=(50, 64))
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :5]
    np.testing.assert_array_equal(_search(vectors, queries, 5), exact)
