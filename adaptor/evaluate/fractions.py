"""Label-fraction subsets of the train split, under three protocols.

``strict``: nested (1 % within 10 % within 100 %), stratified by label, whole patients only, one
draw per seed. ``mgca`` and ``mgca_clean``: the common convention, on MGCA's splits in MGCA's row
order (``evaluate.splits``): ``train.sample(frac=f, random_state=42)`` for classification, and for
segmentation MGCA's loaders' draws (SIIM negatives balanced to positives), so numbers compare with
the literature: neither nested nor stratified nor grouped, and the same subset for every seed
(seeds then vary only the head's initialisation).
"""

from __future__ import annotations

import hashlib

import numpy as np


def strata(labels: np.ndarray) -> np.ndarray:
    """One stratum per distinct label vector (class for single-label, combination for multi-label);
    an ignored (NaN) label is its own value."""
    _, inverse = np.unique(np.nan_to_num(labels, nan=-1.0), axis=0, return_inverse=True)
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


PROTOCOLS = ("strict", "mgca", "mgca_clean")
MGCA_RANDOM_STATE = 42


def draw(
    labels: np.ndarray, fractions: list[float], seed: int, groups: np.ndarray | None = None
) -> dict[float, np.ndarray]:
    """Row indices of each fraction's strict subset (at least one sample each).

    With ``groups`` (patients), whole groups are ordered, stratified by the label of each group's
    first sample, and a fraction takes groups in that order until it holds ``round(f * n)`` samples.
    """
    if groups is None:
        order = nested_order(labels, seed)
        return {f: np.sort(order[: max(1, round(f * len(order)))]) for f in fractions}
    names, first, members = np.unique(groups, return_index=True, return_inverse=True)
    group_order = nested_order(labels[first], seed)
    rows_of = [np.flatnonzero(members == g) for g in range(len(names))]
    ordered = np.concatenate([rows_of[g] for g in group_order])
    ends = np.cumsum([len(rows_of[g]) for g in group_order])
    subsets = {}
    for fraction in fractions:
        wanted = max(1, round(fraction * len(ordered)))
        subsets[fraction] = np.sort(ordered[: ends[np.searchsorted(ends, wanted)]])
    return subsets


def draw_mgca(n: int, fractions: list[float]) -> dict[float, np.ndarray]:
    """Row indices that ``DataFrame.sample(frac=f, random_state=42)`` picks from ``n`` rows."""
    return {
        f: np.sort(np.random.RandomState(MGCA_RANDOM_STATE).choice(n, size=round(f * n), replace=False))
        for f in fractions
    }


def draw_mgca_segmentation(
    positive: np.ndarray, fractions: list[float], balance: bool
) -> dict[float, np.ndarray]:
    """Row indices MGCA's segmentation loaders train on, from the train rows in MGCA's order.

    Each of MGCA's runs seeds numpy's global generator with 42; its SIIM loader (``balance``) then
    keeps every positive and draws as many negatives without replacement; below 100 % (RSNA: always)
    it draws ``int(f * n)`` of those without replacement.
    """
    subsets = {}
    for fraction in fractions:
        rng = np.random.RandomState(MGCA_RANDOM_STATE)
        pool = np.arange(len(positive))
        if balance:
            positives, negatives = np.flatnonzero(positive), np.flatnonzero(~positive)
            if len(negatives) < len(positives):
                raise ValueError(f"cannot balance {len(positives)} positives with {len(negatives)} negatives")
            chosen = rng.choice(negatives, size=len(positives), replace=False)
            pool = np.concatenate([positives, negatives[np.isin(negatives, chosen)]])
        if fraction != 1:
            pool = pool[rng.choice(len(pool), size=int(fraction * len(pool)), replace=False)]
        subsets[fraction] = np.sort(pool)
    return subsets


def subset_hash(ids: list[str]) -> str:
    """A short fingerprint of a subset, recorded beside every result trained on it."""
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]
