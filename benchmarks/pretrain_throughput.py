"""Adaptor pre-training throughput: ``adaptor.train.pretrain.pretrain`` itself (cached pairs read
from Zarr, the paper's Adaptor, AdamW, validation, checkpoints, Recall@K with faiss) on random
pooled features at the paper's widths (768 image, 768 text). Prints JSON: pairs per second trained,
the device and the precision (bf16 autocast on a GPU; a CPU trains in fp32). An epoch costs the
same whatever the cached values are.

    python benchmarks/pretrain_throughput.py --n 16384 --epochs 2 --threads 2
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

from adaptor.cache.store import Layout, open_cache, write_all
from adaptor.devices import compute_device
from adaptor.train.pretrain import PretrainSettings, pretrain


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=16384, help="training pairs (validation: another n / 8)")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    total = args.n + args.n // 8
    ids = [f"s{i}" for i in range(total)]
    rng = np.random.default_rng(0)
    manifest = pl.DataFrame({"id": ids, "split": ["train"] * args.n + ["val"] * (total - args.n)})
    settings = PretrainSettings(epochs=args.epochs, batch_size=args.batch, precision=args.precision)
    with tempfile.TemporaryDirectory() as folder:
        for name in ("image", "text"):
            values = rng.normal(size=(total, 768)).astype(np.float16)
            write_all(Path(folder) / f"{name}.zarr", ids, values, {"benchmark": name}, Layout(dim=768))
        image, text = (open_cache(Path(folder) / f"{name}.zarr") for name in ("image", "text"))
        started = time.perf_counter()
        metrics = pretrain(manifest, image, text, settings, Path(folder) / "run")
        seconds = time.perf_counter() - started
    device = compute_device()
    print(
        json.dumps(
            {
                "n_train": args.n,
                "batch": args.batch,
                "epochs": args.epochs,
                "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                "precision": args.precision if device.type == "cuda" else "fp32",
                "trainable_parameters": metrics["trainable_parameters"],
                "train_pairs_per_second": round(float(metrics["train_samples_per_second"]), 1),
                "wall_seconds": round(seconds, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
