"""Test metrics: AUROC (binary, multi-label macro and per class), accuracy and macro-F1, each with
a bootstrap 95 % interval; and segmentation Dice three ways, so an empty predictor cannot flatter.

Every metric is a function of per-sample weights: a bootstrap resample is the test set with each
sample counted as often as it was drawn, so all resamples are scored at once as rows of a weight
matrix [R, n] (the point estimate is the row of ones). The figures equal those of scoring each
resampled array in turn, to floating-point rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

Weighted = Callable[[np.ndarray], dict[str, np.ndarray]]


def _ratio(numerator: np.ndarray, denominator: np.ndarray, empty: float = np.nan) -> np.ndarray:
    """numerator / denominator, ``empty`` where the denominator is 0."""
    out = np.full(np.broadcast(numerator, denominator).shape, empty, dtype=float)
    return np.asarray(np.divide(numerator, denominator, out=out, where=denominator != 0))


def weighted_auroc(targets: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUROC of one binary column under each row of ``weights`` [R, n]: the Mann-Whitney U with ties
    counted half, over the samples whose label is known (not NaN); NaN where one class has no weight."""
    known = ~np.isnan(targets)
    order = np.argsort(np.where(known, scores, np.inf), kind="stable")
    sorted_scores = scores[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    positive = (targets[order] > 0.5) & known[order]
    negative = (targets[order] <= 0.5) & known[order]
    w = weights[:, order]
    positives = np.add.reduceat(w * positive, starts, axis=1)  # weight per tie group
    negatives = np.add.reduceat(w * negative, starts, axis=1)
    below = np.cumsum(negatives, axis=1) - negatives
    pairs = positives.sum(1) * negatives.sum(1)
    return _ratio((positives * (below + 0.5 * negatives)).sum(1), pairs)


def auroc(targets: np.ndarray, scores: np.ndarray) -> float:
    """AUROC of one binary column over the samples whose label is known; NaN with one class."""
    return float(
        weighted_auroc(np.asarray(targets, float), np.asarray(scores, float), np.ones((1, len(targets))))[0]
    )


def mean_defined(values: np.ndarray) -> np.ndarray:
    """Mean over the last axis of the defined (non-NaN) values; NaN where none is defined."""
    defined = ~np.isnan(values)
    return _ratio(np.where(defined, values, 0).sum(-1), defined.sum(-1))


def _macro_f1(truth: np.ndarray, predicted: np.ndarray, n_classes: int, weights: np.ndarray) -> np.ndarray:
    """Macro-F1 over all ``n_classes`` (a class never true nor predicted scores 0, as scikit-learn)."""
    f1 = []
    for c in range(n_classes):
        true_positive = (weights * ((truth == c) & (predicted == c))).sum(1)
        false_positive = (weights * ((truth != c) & (predicted == c))).sum(1)
        false_negative = (weights * ((truth == c) & (predicted != c))).sum(1)
        f1.append(_ratio(2 * true_positive, 2 * true_positive + false_positive + false_negative, 0.0))
    return np.asarray(np.mean(f1, axis=0))


def weighted_classification(
    task: str, targets: np.ndarray, scores: np.ndarray, classes: tuple[str, ...], weights: np.ndarray
) -> dict[str, np.ndarray]:
    """Each metric of ``task`` under each row of ``weights`` [R, n]."""
    if task == "binary":
        return {"auroc": weighted_auroc(targets[:, 0], scores[:, 0], weights)}
    if task == "multilabel":
        per_class = {
            f"auroc/{name}": weighted_auroc(targets[:, i], scores[:, i], weights)
            for i, name in enumerate(classes)
        }
        return {"auroc": mean_defined(np.stack(list(per_class.values()), axis=-1)), **per_class}
    if task == "multiclass":
        truth, predicted = targets[:, 0].astype(int), scores.argmax(axis=1)
        return {
            "accuracy": _ratio((weights * (truth == predicted)).sum(1), weights.sum(1)),
            "macro_f1": _macro_f1(truth, predicted, len(classes), weights),
        }
    raise ValueError(f"no classification metrics for task {task!r}")


def classification_metrics(
    task: str, targets: np.ndarray, scores: np.ndarray, classes: tuple[str, ...]
) -> dict[str, float]:
    """Metrics for ``task`` given targets [N, C] (or [N, 1] class index) and scores [N, C]."""
    unweighted = weighted_classification(task, targets, scores, classes, np.ones((1, len(targets))))
    return {name: float(values[0]) for name, values in unweighted.items()}


def primary_metric(task: str) -> str:
    return "accuracy" if task == "multiclass" else "auroc"


def resample_weights(n: int, resamples: int, seed: int, block_cells: int = 2**22) -> Iterator[np.ndarray]:
    """Blocks of rows [r, n]: how often each sample was drawn in each resample (n draws with
    replacement), from one random stream, in blocks of at most ``block_cells`` values."""
    rng = np.random.default_rng(seed)
    block = max(1, block_cells // max(n, 1))
    for start in range(0, resamples, block):
        rows = min(block, resamples - start)
        offsets = (rng.integers(0, n, (rows, n)) + n * np.arange(rows)[:, None]).ravel()
        yield np.bincount(offsets, minlength=rows * n).reshape(rows, n).astype(float)


def bootstrap(
    compute: Weighted, n: int, resamples: int = 1000, seed: int = 0
) -> dict[str, tuple[float, float, float]]:
    """Every metric of ``compute(weights)`` with its percentile bootstrap 95 % interval over n samples.

    Returns {name: (value, low, high)}. Resamples where a metric is undefined (NaN, e.g. one class
    drawn) are left out of that metric's interval.
    """
    point = compute(np.ones((1, n)))
    blocks = [compute(weights) for weights in resample_weights(n, resamples, seed)]
    intervals = {}
    for name, value in point.items():
        draws = np.concatenate([block[name] for block in blocks])
        defined = draws[~np.isnan(draws)]
        low, high = np.percentile(defined, [2.5, 97.5]) if len(defined) else (np.nan, np.nan)
        intervals[name] = (float(value[0]), float(low), float(high))
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
        lambda weights: weighted_classification(task, targets, scores, classes, weights),
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


def _dice_summary(per_image: np.ndarray, empty: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "dice_mgca": _ratio((weights * per_image).sum(1), weights.sum(1)),
        "dice_positive": _ratio((weights * per_image * ~empty).sum(1), (weights * ~empty).sum(1)),
        "dice_empty_predictor": _ratio((weights * empty).sum(1), weights.sum(1)),
    }


def dice_scores(probabilities: np.ndarray, masks: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Dice three ways on [N, H, W] predictions and masks, always reported together.

    ``dice_mgca``: per image, an empty mask scores 1 if the prediction is empty, else 0 (MGCA's
    metric); ``dice_positive``: the mean over images whose mask is not empty; ``dice_empty_predictor``:
    what predicting nothing anywhere scores under ``dice_mgca`` (the share of empty masks).
    """
    per_image, empty = _dice_per_image(probabilities, masks, threshold)
    return {
        name: float(v[0]) for name, v in _dice_summary(per_image, empty, np.ones((1, len(empty)))).items()
    }


def dice_with_intervals(
    probabilities: np.ndarray, masks: np.ndarray, threshold: float = 0.5, resamples: int = 1000, seed: int = 0
) -> dict[str, tuple[float, float, float]]:
    """The three Dice figures with bootstrap 95 % intervals over test images."""
    per_image, empty = _dice_per_image(probabilities, masks, threshold)
    return bootstrap(
        lambda weights: _dice_summary(per_image, empty, weights), len(per_image), resamples, seed
    )
