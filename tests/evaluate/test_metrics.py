import math

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from adaptor.evaluate.metrics import auroc, classification_metrics, dice_scores, with_intervals


def test_auroc_known_values() -> None:
    assert auroc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert auroc(np.array([0, 1]), np.array([0.9, 0.1])) == 0.0
    assert math.isnan(auroc(np.array([1, 1]), np.array([0.2, 0.3])))


def test_multilabel_macro_skips_undefined_columns() -> None:
    targets = np.array([[0, 1, 1], [1, 1, 0], [0, 1, 1], [1, 1, 0]], dtype=float)
    scores = np.array([[0.1, 0.5, 0.9], [0.9, 0.5, 0.1], [0.2, 0.5, 0.2], [0.3, 0.5, 0.8]])
    metrics = classification_metrics("multilabel", targets, scores, ("a", "b", "c"))
    assert metrics["auroc/a"] == 1.0 and math.isnan(metrics["auroc/b"]) and metrics["auroc/c"] == 0.75
    assert metrics["auroc"] == pytest.approx(0.875)


def test_multiclass_accuracy_and_macro_f1() -> None:
    targets = np.array([[0], [1], [2], [2]], dtype=float)
    scores = np.eye(3)[[0, 1, 1, 2]]
    metrics = classification_metrics("multiclass", targets, scores, ("n", "p", "c"))
    assert metrics["accuracy"] == 0.75
    assert metrics["macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)


def test_rank_auroc_equals_sklearn_with_ties() -> None:
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 2, 200)
    scores = rng.integers(0, 10, 200) / 10  # many ties
    assert auroc(targets, scores) == pytest.approx(roc_auc_score(targets, scores))


def test_bootstrap_interval_brackets_the_value_and_shrinks_with_more_samples() -> None:
    rng = np.random.default_rng(0)

    def interval(n: int) -> tuple[float, float, float]:
        targets = (np.arange(n) % 2).astype(float)[:, None]
        scores = targets + rng.normal(scale=1.0, size=(n, 1))
        return with_intervals("binary", targets, scores, ("p",), resamples=300)["auroc"]

    value, low, high = interval(100)
    assert low < value < high and low > 0.6 and high < 1.0
    _, big_low, big_high = interval(2000)
    assert big_high - big_low < (high - low) / 3
    perfect = with_intervals(
        "binary", np.array([[0.0], [1.0]] * 10), np.array([[0.1], [0.9]] * 10), ("p",), 50
    )
    assert perfect["auroc"] == (1.0, 1.0, 1.0)


def test_dice_three_ways_on_hand_made_masks() -> None:
    masks = np.zeros((4, 2, 2))
    masks[0, 0, 0] = 1  # positive image, one pixel
    masks[1, :, :] = 1  # positive image, four pixels
    predicted = np.zeros((4, 2, 2))
    predicted[0, 0, :] = 0.9  # 2 predicted, 1 overlapping: 2 * 1 / 3
    predicted[1, 0, 0] = 0.6  # 1 predicted, inside: 2 * 1 / 5
    predicted[3, 1, 1] = 0.7  # a false positive on an empty image: 0; image 2 empty and empty: 1
    scores = dice_scores(predicted, masks)
    assert scores["dice_mgca"] == pytest.approx((2 / 3 + 2 / 5 + 1 + 0) / 4)
    assert scores["dice_positive"] == pytest.approx((2 / 3 + 2 / 5) / 2)
    assert scores["dice_empty_predictor"] == 0.5
    nothing = dice_scores(np.zeros((4, 2, 2)), masks)
    assert nothing["dice_mgca"] == nothing["dice_empty_predictor"] == 0.5 and nothing["dice_positive"] == 0.0
    assert np.isnan(dice_scores(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))["dice_positive"])


def _reference_metrics(task: str, targets: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """scikit-learn on one resampled array: what the weighted metrics must equal."""
    if task == "multiclass":
        truth, predicted = targets[:, 0].astype(int), scores.argmax(1)
        f1 = f1_score(truth, predicted, average="macro", labels=list(range(scores.shape[1])), zero_division=0)
        return {"accuracy": float((truth == predicted).mean()), "macro_f1": float(f1)}
    per_class = {}
    for i in range(targets.shape[1]):
        known = ~np.isnan(targets[:, i])
        column = targets[known, i]
        defined = 0 < column.sum() < len(column)
        per_class[f"auroc/{i}"] = roc_auc_score(column, scores[known, i]) if defined else math.nan
    if task == "binary":
        return {"auroc": per_class["auroc/0"]}
    defined = [v for v in per_class.values() if not math.isnan(v)]
    return {"auroc": float(np.mean(defined)) if defined else math.nan, **per_class}


@pytest.mark.parametrize("task", ["binary", "multilabel", "multiclass"])
def test_the_weighted_bootstrap_equals_scoring_each_resample_in_turn(task: str) -> None:
    rng = np.random.default_rng(7)
    n, classes = 60, ("0", "1", "2", "3")
    if task == "multiclass":
        targets, scores = rng.integers(0, 3, (n, 1)).astype(float), rng.random((n, 4))  # class 3 absent
    else:
        width = 1 if task == "binary" else 4
        targets = (rng.random((n, width)) < 0.3).astype(float)
        targets[rng.random((n, width)) < 0.1] = np.nan if task == "multilabel" else 0.0
        scores = np.round(rng.random((n, width)), 1)  # ties
        classes = classes[:width]
    ours = with_intervals(task, targets, scores, classes, resamples=200, seed=3)
    draws = np.random.default_rng(3).integers(0, n, (200, n))
    resampled = [_reference_metrics(task, targets[index], scores[index]) for index in draws]
    for name, (value, low, high) in ours.items():
        assert value == pytest.approx(_reference_metrics(task, targets, scores)[name])
        values = [r[name] for r in resampled if not math.isnan(r[name])]
        assert (low, high) == pytest.approx(tuple(np.percentile(values, [2.5, 97.5])))
