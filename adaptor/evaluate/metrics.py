"""Test metrics: AUROC (binary, multi-label macro and per class), accuracy and macro-F1."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score, roc_auc_score


def auroc(targets: np.ndarray, scores: np.ndarray) -> float:
    """AUROC of one binary column; NaN when the column holds a single class (undefined)."""
    if len(np.unique(targets)) < 2:
        return float("nan")
    return float(roc_auc_score(targets, scores))


def classification_metrics(
    task: str, targets: np.ndarray, scores: np.ndarray, classes: tuple[str, ...]
) -> dict[str, float]:
    """Metrics for ``task`` given targets [N, C] (or [N, 1] class index) and scores [N, C]."""
    if task == "binary":
        return {"auroc": auroc(targets[:, 0], scores[:, 0])}
    if task == "multilabel":
        per_class = {f"auroc/{name}": auroc(targets[:, i], scores[:, i]) for i, name in enumerate(classes)}
        return {"auroc": float(np.nanmean(list(per_class.values()))), **per_class}
    if task == "multiclass":
        truth, predicted = targets[:, 0].astype(int), scores.argmax(axis=1)
        return {
            "accuracy": float((truth == predicted).mean()),
            "macro_f1": float(f1_score(truth, predicted, average="macro", labels=list(range(len(classes))))),
        }
    raise ValueError(f"no classification metrics for task {task!r}")


def primary_metric(task: str) -> str:
    return "accuracy" if task == "multiclass" else "auroc"
