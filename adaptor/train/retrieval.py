"""Cross-modal retrieval on held-out pairs: Recall@K with faiss (on the GPU when faiss sees one)."""

from __future__ import annotations

import faiss
import numpy as np

KS = (1, 5, 10)


def _search(index_vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Top-k rows of ``index_vectors`` by inner product (cosine for unit vectors) for each query."""
    index: faiss.Index = faiss.IndexFlatIP(index_vectors.shape[1])
    if faiss.get_num_gpus() > 0:
        index = faiss.index_cpu_to_all_gpus(index)
    index.add(np.ascontiguousarray(index_vectors, dtype=np.float32))
    _, found = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return found


def recall_at_k(image: np.ndarray, text: np.ndarray, ks: tuple[int, ...] = KS) -> dict[str, float]:
    """Recall@K both ways: pair i is the only right answer for query i (duplicate reports count as wrong).

    Chance is K / N.
    """
    n = len(image)
    deepest = min(max(ks), n)
    truth = np.arange(n)[:, None]
    results = {}
    for direction, (queries, candidates) in {
        "image_to_text": (image, text),
        "text_to_image": (text, image),
    }.items():
        found = _search(candidates, queries, deepest)
        for k in ks:
            results[f"{direction}/R@{k}"] = float((found[:, :k] == truth).any(axis=1).mean())
    return results
