"""The cache dividend: one pooled-Adaptor epoch trained from the cache against one with the frozen
encoders in the loop, on the same pairs and batch size. Prints JSON.

(a) ``cache``: open both Zarr caches (float16, as the embed stage writes them; load the arrays) and
    train one epoch on index slices. The cached values are random: an epoch costs the same whatever
    they are.
(b) ``memory``: the same epoch from tensors already in memory.
(c) ``encoders_in_loop``: what an end-to-end frozen-backbone implementation pays per epoch: every step
    decodes and preprocesses its images, tokenises its reports (padded to ``max_length``, as such code
    does), runs both frozen encoders without gradients, then the same Adaptor step. Running (c) for a
    whole epoch at the paper's sizes takes hours on a CPU, so it is measured on ``--probe`` samples
    per encoder and extrapolated: epoch = n x (seconds per image + seconds per report) + (b).

Encoder pairs: the demo's (EfficientNet-Lite0 at its demo preprocessing, MiniLM) and the paper's
sizes with random weights (DINOv2 ViT-B/14 at 224 px, BERT-base): a forward costs the same whatever
the weights' values.

    python benchmarks/cache_dividend.py --n 4096 --batch 1024 --threads 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch
from _demo import demo_specs, paper_size_encoders

from adaptor.cache.store import Layout, open_cache, write_all
from adaptor.data.demo.iu_reports import read_iu_reports
from adaptor.data.demo.render import render
from adaptor.data.demo.writers import _save
from adaptor.data.images import read_grey
from adaptor.data.reports import clean_report
from adaptor.encoders.registry import LoadedEncoder, load_encoder
from adaptor.model.adaptor import Adaptor, AdaptorConfig
from adaptor.model.loss import contrastive_loss
from adaptor.train.pairs import batch_indices


def demo_encoders() -> tuple[LoadedEncoder, LoadedEncoder]:
    specs = demo_specs()
    return load_encoder(specs["image"]), load_encoder(specs["text"])


def adaptor_epoch(image: torch.Tensor, text: torch.Tensor, batch: int) -> float:
    """Seconds for one training epoch of the pooled Adaptor on in-memory arrays."""
    torch.manual_seed(0)
    model = Adaptor(AdaptorConfig(image.shape[1], text.shape[1])).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01)
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for index in batch_indices(len(image), batch, generator):
        out_image, out_text = model(image[index], text[index])
        loss = contrastive_loss(out_image, out_text, model.scale())
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return time.perf_counter() - start


def per_sample_in_loop(
    image_encoder: LoadedEncoder, text_encoder: LoadedEncoder, frame: pl.DataFrame
) -> dict:
    """Seconds per image (decode + preprocess + forward) and per report (tokenise + forward)."""
    preprocess = image_encoder.spec.preprocess
    paths, texts = frame["path"].to_list(), frame["text"].to_list()
    size = min(32, len(frame))
    with torch.inference_mode():
        image_encoder.module(torch.stack([preprocess(read_grey(p)) for p in paths[:2]]))
        start = time.perf_counter()
        for first in range(0, len(paths), size):
            batch = torch.stack([preprocess(read_grey(p)) for p in paths[first : first + size]])
            image_encoder.module(batch.contiguous(memory_format=torch.channels_last))
        image_seconds = (time.perf_counter() - start) / len(paths)
        start = time.perf_counter()
        for first in range(0, len(texts), size):
            tokens = text_encoder.tokenizer(
                texts[first : first + size],
                padding="max_length",
                truncation=True,
                max_length=text_encoder.spec.max_length,
                return_tensors="pt",
            )
            text_encoder.module(tokens["input_ids"], tokens["attention_mask"])
        text_seconds = (time.perf_counter() - start) / len(texts)
    return {"seconds_per_image": image_seconds, "seconds_per_report": text_seconds}


def measure(
    name: str,
    encoders: tuple[LoadedEncoder, LoadedEncoder],
    frame: pl.DataFrame,
    folder: Path,
    args: argparse.Namespace,
) -> dict[str, object]:
    image_encoder, text_encoder = encoders
    caches = []
    rng = np.random.default_rng(0)
    ids = frame["id"].to_list()
    for encoder in encoders:  # the epoch's cost depends on the widths, not on the cached values
        path = folder / f"{name}-{encoder.spec.modality}.zarr"
        values = rng.normal(size=(len(ids), encoder.dim)).astype(np.float32)
        write_all(path, ids, values, {"benchmark": name}, Layout(dim=encoder.dim))
        caches.append(path)
    start = time.perf_counter()
    image, text = (torch.from_numpy(open_cache(path).embeddings) for path in caches)
    load_seconds = time.perf_counter() - start
    memory = adaptor_epoch(image, text, args.batch)
    cache = load_seconds + adaptor_epoch(image, text, args.batch)
    probe = per_sample_in_loop(image_encoder, text_encoder, frame.head(args.probe))
    in_loop = len(frame) * (probe["seconds_per_image"] + probe["seconds_per_report"]) + memory
    return {
        "image_encoder": image_encoder.spec.name,
        "text_encoder": text_encoder.spec.name,
        "cache_epoch_seconds": round(cache, 3),
        "cache_load_seconds": round(load_seconds, 3),
        "memory_epoch_seconds": round(memory, 3),
        "encoders_in_loop_epoch_seconds": round(in_loop, 1),
        "images_per_second_in_loop": round(1 / probe["seconds_per_image"], 2),
        "reports_per_second_in_loop": round(1 / probe["seconds_per_report"], 2),
        "adaptor_samples_per_second": round(len(frame) / memory, 1),
        "dividend": round(in_loop / cache, 1),
        "cache_over_memory": round(cache / memory, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=4096, help="pairs in the epoch")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--probe", type=int, default=64, help="samples timed with the encoders in the loop")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    reports = [clean_report(f"{r.impression} {r.findings}") for r in read_iu_reports()]
    texts = [text for text in reports if text]
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for index in range(args.n):
            paths.append(str(Path(folder) / f"{index}.jpg"))
            _save(Path(paths[-1]), render([], seed=index, size=256).pixels)
        frame = pl.DataFrame(
            {
                "id": [str(i) for i in range(args.n)],
                "path": paths,
                "text": [texts[i % len(texts)] for i in range(args.n)],
            }
        )
        demo = measure("demo", demo_encoders(), frame, Path(folder), args)
        paper = measure("paper", paper_size_encoders(), frame, Path(folder), args)
    print(
        json.dumps(
            {
                "n_pairs": args.n,
                "batch": args.batch,
                "threads": args.threads,
                "device": "cpu",
                "demo": demo,
                "paper_size": paper,
                "dividend_demo": demo["dividend"],
                "dividend_paper_size": paper["dividend"],
                "cache_over_memory": max(demo["cache_over_memory"], paper["cache_over_memory"]),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
