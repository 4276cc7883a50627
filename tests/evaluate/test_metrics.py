import math

import numpy as np
import pytest

from adaptor.evaluate.metrics import auroc, classification_metrics


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
