"""Embedding throughput: the full stage (decode -> encode -> Zarr) against the bare encoder forward.

Prints JSON with samples per second for both, measured in the same run on the same inputs, and
their ratio, for the demo encoders (EfficientNet-Lite0, MiniLM on real IU reports) and a ViT-S/16
with random weights (a forward costs the same whatever the weights' values); for the image encoders
also the forward without BatchNorm folding, and the speed-up folding gives. Images are rendered by
the demo generator and written as JPEGs first (not timed). On a CUDA machine the same script times
the GPU path (bf16 autocast, channels_last, pinned memory).

    python benchmarks/embed_throughput.py --n 512 --threads 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import torch
from _demo import demo_specs

from adaptor.data.demo.iu_reports import read_iu_reports
from adaptor.data.demo.render import render
from adaptor.data.demo.writers import _save
from adaptor.data.images import read_grey
from adaptor.data.reports import clean_report
from adaptor.encoders.embed import EmbedSettings, _autocast, _device, embed_manifest
from adaptor.encoders.registry import EncoderSpec, LoadedEncoder, load_encoder


def specs(batch: int) -> list[EncoderSpec]:
    demo = demo_specs(batch)
    preprocess = {"resize": 256, "crop": 224, "normalize": "imagenet"}
    vit = EncoderSpec(
        "vit_small_random",
        "image",
        "timm",
        "vit_small_patch16_224",
        weights="random",
        preprocess=preprocess,
        batch_size=batch,
    )
    return [demo["image"], demo["text"], vit]


def _timed(run: Callable[[], None], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def bare_forward(
    encoder: LoadedEncoder, frame: pl.DataFrame, device: torch.device, folded: bool = True
) -> float:
    """Samples per second of the encoder alone on inputs decoded / tokenised beforehand; an image
    encoder as the stage runs it (BatchNorms folded) or, with ``folded`` false, as loaded."""
    size = encoder.spec.batch_size
    if encoder.spec.modality == "image":
        module = encoder.inference_module() if folded else encoder.module
        module = module.to(device, memory_format=torch.channels_last)
        preprocess = encoder.spec.preprocess
        tensors = torch.stack([preprocess(read_grey(p)) for p in frame["path"]])
        batches = [
            (tensors[i : i + size].to(device).contiguous(memory_format=torch.channels_last),)
            for i in range(0, len(tensors), size)
        ]
    else:
        module = encoder.module.to(device)
        texts = frame["text"].to_list()
        order = np.argsort([len(t) for t in texts], kind="stable")
        batches = []
        for i in range(0, len(texts), size):
            tokens = encoder.tokenizer(
                [texts[j] for j in order[i : i + size]],
                padding=True,
                truncation=True,
                max_length=encoder.spec.max_length,
                return_tensors="pt",
            ).to(device)
            batches.append((tokens["input_ids"], tokens["attention_mask"]))

    def run() -> None:
        for batch in batches:
            module(*batch)

    with torch.inference_mode(), _autocast(device):
        module(*batches[0])
        return len(frame) / _timed(run, device)


def full_stage(encoder: LoadedEncoder, frame: pl.DataFrame, out: Path, workers: int) -> float:
    settings = EmbedSettings(num_workers=workers)
    seconds = _timed(lambda: embed_manifest(encoder, frame, out, settings, resume=False), _device())
    return len(frame) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = _device()
    results: dict[str, object] = {
        "n": args.n,
        "threads": args.threads,
        "workers": args.workers,
        "batch": args.batch,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
    }
    reports = [clean_report(f"{r.impression} {r.findings}") for r in read_iu_reports(args.n * 2)]
    texts = [text for text in reports if text][: args.n]
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for index in range(args.n):
            paths.append(str(Path(folder) / f"{index}.jpg"))
            _save(Path(paths[-1]), render([], seed=index, size=256).pixels)
        frame = pl.DataFrame({"id": [str(i) for i in range(args.n)], "path": paths, "text": texts})
        for spec in specs(args.batch):
            encoder = load_encoder(spec)
            full_stage(encoder, frame.head(args.batch), Path(folder) / "warm.zarr", args.workers)
            stage = full_stage(encoder, frame, Path(folder) / f"{spec.name}.zarr", args.workers)
            bare = bare_forward(encoder, frame, device)
            results[spec.name] = {
                "stage_samples_per_s": round(stage, 1),
                "bare_forward_samples_per_s": round(bare, 1),
                "stage_over_bare": round(stage / bare, 3),
            }
            if spec.modality == "image":
                unfolded = bare_forward(encoder, frame, device, folded=False)
                results[spec.name] |= {
                    "unfolded_forward_samples_per_s": round(unfolded, 1),
                    "batchnorm_folding_speedup": round(bare / unfolded, 3),
                }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
