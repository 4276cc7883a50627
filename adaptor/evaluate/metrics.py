"""Test metrics: AUROC (binary, multi-label macro and per class), accuracy and macro-F1, each with
a bootstrap 95 % interval; and segmentation Dice three ways, so an empty predictor cannot flatter.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import rankdata


def auroc(targets: np.ndarray, scores: np.ndarray) -> float:
    """AUROC of one binary column (Mann-Whitney U from ranks, ties averaged) over the samples whose
    label is known (not NaN); NaN with one class."""
    known = ~np.isnan(targets)
    targets, scores = targets[known], scores[known]
    positive = targets > 0.5
    n_positive = int(positive.sum())
    n_negative = len(targets) - n_positive
    if n_positive == 0 or n_negative == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_positive * (n_positive + 1) / 2) / (n_positive * n_negative))


def mean_defined(values: list[float]) -> float:
    """Mean over the defined (non-NaN) values; NaN when none is defined."""
    defined = [v for v in values if not np.isnan(v)]
    return float(np.mean(defined)) if defined else float("nan")


def classification_metrics(
    task: str, targets: np.ndarray, scores: np.ndarray, classes: tuple[str, ...]
) -> dict[str, float]:
    """Metrics for ``task`` given targets [N, C] (or [N, 1] class index) and scores [N, C]."""
    if task == "binary":
        return {"auroc": auroc(targets[:, 0], scores[:, 0])}
    if task == "multilabel":
        per_class = {f"auroc/{name}": auroc(targets[:, i], scores[:, i]) for i, name in enumerate(classes)}
        return {"auroc": mean_defined(list(per_class.values())), **per_class}
    if task == "multiclass":
        from sklearn.metrics import f1_score  # imported here: it costs every other job half a second

        truth, predicted = targets[:, 0].astype(int), scores.argmax(axis=1)
        return {
            "accuracy": float((truth == predicted).mean()),
            "macro_f1": float(f1_score(truth, predicted, average="macro", labels=list(range(len(classes))))),
        }
    raise ValueError(f"no classification metrics for task {task!r}")


def primary_metric(task: str) -> str:
    return "accuracy" if task == "multiclass" else "auroc"


def bootstrap(
    compute: Callable[[np.ndarray], dict[str, float]], n: int, resamples: int = 1000, seed: int = 0
) -> dict[str, tuple[float, float, float]]:
    """Every metric of ``compute(index)`` with its percentile bootstrap 95 % interval over n samples.

    Returns {name: (value, low, high)}. Resamples where a metric is undefined (NaN, e.g. one class
    drawn) are left out of that metric's interval.
    """
    point = compute(np.arange(n))
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {name: [] for name in point}
    for _ in range(resamples):
        for name, value in compute(rng.integers(0, n, n)).items():
            if not np.isnan(value):
                draws[name].append(value)
    intervals = {}
    for name, value in point.items():
        low, high = np.percentile(draws[name], [2.5, 97.5]) if draws[name] else (np.nan, np.nan)
        intervals[name] = (value, float(low), float(high))
    return intervals


def with_intervals(
    task: str,
    targets: np.ndarray,
    scores: np.ndarray,
    classes: tuple[str, ...],
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, tuple[float, float, float]]:
    """Classification metrics with bootstrap 95 % intervals over test samples."""
    return bootstrap(
        lambda index: classification_metrics(task, targets[index], scores[index], classes),
        len(targets),
        resamples,
        seed,
    )


def _dice_per_image(
    probabilities: np.ndarray, masks: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-image Dice under MGCA's convention, and which images have an empty mask."""
    predicted = probabilities.reshape(len(probabilities), -1) >= threshold
    truth = masks.reshape(len(masks), -1) > 0.5
    overlap = (predicted & truth).sum(1)
    sizes = predicted.sum(1) + truth.sum(1)
    empty = truth.sum(1) == 0
    per_image = np.where(empty, (predicted.sum(1) == 0).astype(float), 2 * overlap / np.maximum(sizes, 1))
    return per_image, empty


def _dice_summary(per_image: np.ndarray, empty: np.ndarray) -> dict[str, float]:
    return {
        "dice_mgca": float(per_image.mean()),
        "dice_positive": float(per_image[~empty].mean()) if (~empty).any() else float("nan"),
        "dice_empty_predictor": float(empty.mean()),
    }


def dice_scores(probabilities: np.ndarray, masks: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Dice three ways on [N, H, W] predictions and masks, always reported together.

    ``dice_mgca``: per image, an empty mask scores 1 if the prediction is empty, else 0 (MGCA's
    metric); ``dice_positive``: the mean over images whose mask is not empty; ``dice_empty_predictor``:
    what predicting nothing anywhere scores under ``dice_mgca`` (the share of empty masks).
    """
    return _dice_summary(*_dice_per_image(probabilities, masks, threshold))


def dice_with_intervals(
    probabilities: np.ndarray, masks: np.ndarray, threshold: float = 0.5, resamples: int = 1000, seed: int = 0
) -> dict[str, tuple[float, float, float]]:
    """The three Dice figures with bootstrap 95 % intervals over test images."""
    per_image, empty = _dice_per_image(probabilities, masks, threshold)
    return bootstrap(
        lambda index: _dice_summary(per_image[index], empty[index]), len(per_image), resamples, seed
    )
