"""Label-fraction subsets of the train split: nested, stratified, deterministic."""

from __future__ import annotations

import hashlib

import numpy as np


def strata(labels: np.ndarray) -> np.ndarray:
    """One stratum per distinct label vector (class for single-label, combination for multi-label)."""
    _, inverse = np.unique(labels, axis=0, return_inverse=True)
    return inverse.reshape(-1)


def nested_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """An ordering of the samples whose every prefix is stratified.

    Each sample gets a score (rank within its stratum + jitter) / stratum size; sorting by score
    interleaves the strata in proportion. A fraction is a prefix, so 1 % lies within 10 % within
    100 %, and one seed gives one draw.
    """
    rng = np.random.default_rng(seed)
    keys = strata(labels)
    score = np.empty(len(keys))
    for key in np.unique(keys):
        members = np.flatnonzero(keys == key)
        shuffled = members[rng.permutation(len(members))]
        score[shuffled] = (np.arange(len(members)) + rng.random(len(members))) / len(members)
    return np.argsort(score, kind="stable")


def draw(labels: np.ndarray, fractions: list[float], seed: int) -> dict[float, np.ndarray]:
    """Row indices of each fraction's subset (at least one sample each)."""
    order = nested_order(labels, seed)
    return {f: np.sort(order[: max(1, round(f * len(order)))]) for f in fractions}


def subset_hash(ids: list[str]) -> str:
    """A short fingerprint of a subset, recorded beside every result trained on it."""
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]
