"""Recall@K with faiss (``adaptor.train.retrieval.recall_at_k``), on the GPU when faiss sees one:
random unit vectors, both directions. Prints JSON with the seconds, the queries per second and how
many GPUs faiss used. Recall of random vectors is chance (K / N): it is printed as a check.

    python benchmarks/retrieval_throughput.py --n 50000 --dim 512
"""

from __future__ import annotations

import argparse
import json
import time

import faiss
import numpy as np

from adaptor.train.retrieval import recall_at_k


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=50000)
    parser.add_argument("--dim", type=int, default=512)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    image, text = (rng.normal(size=(args.n, args.dim)).astype(np.float32) for _ in range(2))
    image /= np.linalg.norm(image, axis=1, keepdims=True)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    started = time.perf_counter()
    recalls = recall_at_k(image, text)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "n": args.n,
                "dim": args.dim,
                "faiss_gpus": faiss.get_num_gpus(),
                "seconds": round(seconds, 3),
                "queries_per_second": round(2 * args.n / seconds, 1),
                "image_to_text_R@10": recalls["image_to_text/R@10"],
                "chance_R@10": 10 / args.n,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
