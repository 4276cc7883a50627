"""Embedding throughput: the full stage (read -> decode -> encode -> Zarr) against the bare encoder
forward, measured in the same run on the same inputs. Prints JSON.

``--preset demo``: the demo encoders (EfficientNet-Lite0, MiniLM on real IU reports) and a ViT-S/16
with random weights, on 256 px JPEGs rendered by the demo generator; for the image encoders also
the forward without BatchNorm folding, and the speed-up folding gives.

``--preset paper``: the paper's sizes with random weights (a forward costs the same whatever the
weights' values): DINOv2 ViT-B/14 at 224 px on synthetic full-size radiograph JPEGs (``--image-size``,
2,500 x 3,000 by default, written on the spot with ``--writers`` processes, not timed), and
BERT-base at 112 tokens.

For each image encoder the stage runs once per ``--decode`` mode (``cpu``: JPEGs decoded in the
DataLoader workers with PIL; ``gpu``: bytes read in the workers, decoded and preprocessed on the
encoder's device, which on a CPU-only machine is the CPU). Each stage reports the share of its wall
time the encoder's forward took, and on a GPU how busy decode and forward kept it. On a CUDA machine
the same script times the GPU path (bf16 autocast, channels_last, pinned memory, nvJPEG).

    python benchmarks/embed_throughput.py --n 512 --threads 2
    python benchmarks/embed_throughput.py --preset paper --n 64 --decode cpu gpu --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
import torch
from _demo import demo_specs, paper_size_encoders
from PIL import Image

from adaptor.data.demo.iu_reports import read_iu_reports
from adaptor.data.demo.render import render
from adaptor.data.demo.writers import _save
from adaptor.data.device_images import decode_greys, geometry, read_jpeg
from adaptor.data.images import Preprocess, read_grey
from adaptor.data.reports import clean_report
from adaptor.devices import autocast, compute_device
from adaptor.encoders.embed import EmbedSettings, embed_part, init_cache
from adaptor.encoders.registry import EncoderSpec, LoadedEncoder, load_encoder


def demo_encoders(batch: int) -> list[LoadedEncoder]:
    demo = demo_specs(batch)
    vit = EncoderSpec(
        "vit_small_random",
        "image",
        "timm",
        "vit_small_patch16_224",
        weights="random",
        preprocess={"resize": 256, "crop": 224, "normalize": "imagenet"},
        batch_size=batch,
    )
    return [load_encoder(spec) for spec in (demo["image"], demo["text"], vit)]


def _timed(run: Callable[[], object], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def _full_size_jpeg(job: tuple[str, int, int, int]) -> None:
    """A radiograph-like grey JPEG (smooth anatomy-sized structure plus noise) of full size."""
    path, height, width, seed = job
    rng = np.random.default_rng(seed)
    coarse = rng.normal(128, 40, (height // 100 + 2, width // 100 + 2)).clip(0, 255).astype(np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC))
    noise = rng.normal(0, 4, (height, width))
    pixels = (smooth + noise).clip(0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, "JPEG", quality=95)


def write_images(folder: Path, n: int, preset: str, size: tuple[int, int], writers: int) -> list[str]:
    paths = [str(folder / f"{index}.jpg") for index in range(n)]
    if preset == "demo":
        for index, path in enumerate(paths):
            _save(Path(path), render([], seed=index, size=256).pixels)
    else:
        with ProcessPoolExecutor(writers) as pool:
            list(pool.map(_full_size_jpeg, [(path, *size, index) for index, path in enumerate(paths)]))
    return paths


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
        # At most 256 distinct images, repeated to n: a forward costs the same whatever the pixels,
        # and decoding thousands of full-size JPEGs here would take minutes.
        distinct = torch.stack([preprocess(read_grey(p)) for p in frame["path"].head(256)])
        tensors = distinct[torch.arange(len(frame)) % len(distinct)]
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

    with torch.inference_mode(), autocast(device):
        module(*batches[0])
        return len(frame) / _timed(run, device)


def decode_rates(paths: list[str], preprocess: Preprocess) -> dict[str, float]:
    """Images per second one core decodes and preprocesses: PIL (the workers' path) and TorchCodec's
    libjpeg-turbo with the torch preprocessing (the device path, here on the CPU)."""
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cpu = torch.device("cpu")

    def pil() -> None:
        for path in paths:
            preprocess(read_grey(path))

    def on_cpu() -> None:
        for path in paths:
            (grey,) = decode_greys([read_jpeg(path)], [path], cpu)  # type: ignore[list-item]
            preprocess.normalised(geometry(grey, preprocess))  # type: ignore[arg-type]

    rates = {
        name: round(len(paths) / _timed(run, cpu), 1) for name, run in (("pil", pil), ("torch_cpu", on_cpu))
    }
    torch.set_num_threads(torch_threads)
    return rates


def full_stage(
    encoder: LoadedEncoder, frame: pl.DataFrame, out: Path, workers: int, decode: str
) -> tuple[float, dict]:
    """Samples per second of the stage as the workflow runs it, and its part report."""
    settings = EmbedSettings(num_workers=workers, decode=decode)
    init_cache(encoder, frame, out, settings)
    report: dict = {}
    seconds = _timed(lambda: report.update(embed_part(encoder, frame, out, settings)), compute_device())
    return len(frame) / seconds, report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=["demo", "paper"], default="demo")
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers reading images")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--decode", nargs="+", choices=["cpu", "gpu"], default=["cpu"])
    parser.add_argument("--image-size", type=int, nargs=2, default=[2500, 3000], help="paper preset: H W")
    parser.add_argument("--writers", type=int, default=os.cpu_count() or 1, help="processes writing JPEGs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = compute_device()
    results: dict[str, object] = {
        "preset": args.preset,
        "n": args.n,
        "threads": args.threads,
        "workers": args.workers,
        "batch": args.batch,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
    }
    reports = [clean_report(f"{r.impression} {r.findings}") for r in read_iu_reports()]
    texts = [text for text in reports if text]
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        paths = write_images(Path(folder), args.n, args.preset, tuple(args.image_size), args.writers)
        if args.preset == "paper":
            results["image_size"] = args.image_size
            results["jpeg_mb_mean"] = round(sum(os.path.getsize(p) for p in paths) / len(paths) / 1e6, 2)
        results["writing_images_seconds"] = round(time.perf_counter() - started, 1)
        frame = pl.DataFrame(
            {
                "id": [str(i) for i in range(args.n)],
                "path": paths,
                "text": [texts[i % len(texts)] for i in range(args.n)],
            }
        )
        encoders = (
            demo_encoders(args.batch) if args.preset == "demo" else list(paper_size_encoders(args.batch))
        )
        for encoder in encoders:
            name, image = encoder.spec.name, encoder.spec.modality == "image"
            bare = bare_forward(encoder, frame, device)
            entry: dict[str, object] = {"bare_forward_samples_per_s": round(bare, 1)}
            for decode in args.decode if image else ["cpu"]:
                full_stage(encoder, frame.head(args.batch), Path(folder) / "warm.zarr", args.workers, decode)
                out = Path(folder) / f"{name}-{decode}.zarr"
                stage, report = full_stage(encoder, frame, out, args.workers, decode)
                label = f"decode_{decode}" if image else "stage"
                entry[label] = {
                    "stage_samples_per_s": round(stage, 1),
                    "stage_over_bare": round(stage / bare, 3),
                }
                if image:
                    entry[label] |= {
                        key: report[key] for key in ("forward_share", "gpu_busy_share", "decode")
                    }
            if image:
                entry["decode_images_per_s_one_core"] = decode_rates(paths[:16], encoder.spec.preprocess)
            if image and args.preset == "demo":
                unfolded = bare_forward(encoder, frame, device, folded=False)
                entry |= {
                    "unfolded_forward_samples_per_s": round(unfolded, 1),
                    "batchnorm_folding_speedup": round(bare / unfolded, 3),
                }
            results[name] = entry
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
