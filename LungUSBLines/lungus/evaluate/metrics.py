"""Clip-classification metrics (keys: docs/architecture.md#evaluation-outputs) with patient-bootstrap CIs.

A CI needs every metric on ~1000 resamples. scikit-learn's metric functions spend
2-9 ms per call on input validation, which makes one metrics.json take ~20 s, so the
metrics here are computed from one confusion matrix (and a rank statistic for the
AUC) per resample. Testing/lungus/evaluate checks each against scikit-learn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import rankdata

from lungus.evaluate.bootstrap import bootstrap_ci, patient_bootstrap_indices


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(K, K) counts, rows = truth, columns = prediction (scikit-learn's layout)."""
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def binary_auc(y_true: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC as the Mann-Whitney statistic (ties count one half), None if one class is absent."""
    positives = y_true == 1
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman's rank correlation (ties share their mean rank), None when either is constant."""
    x_ranks, y_ranks = rankdata(x), rankdata(y)
    x_ranks, y_ranks = x_ranks - x_ranks.mean(), y_ranks - y_ranks.mean()
    scale = float(np.sqrt((x_ranks**2).sum() * (y_ranks**2).sum()))
    return None if scale == 0 else float((x_ranks * y_ranks).sum() / scale)


def auc(y_true: np.ndarray, probabilities: np.ndarray) -> float | None:
    """Binary AUC of class 1, or the macro one-vs-rest AUC (None if any class is absent)."""
    n_classes = probabilities.shape[1]
    if n_classes == 2:
        return binary_auc(y_true, probabilities[:, 1])
    per_class = [binary_auc((y_true == k).astype(int), probabilities[:, k]) for k in range(n_classes)]
    return None if any(a is None for a in per_class) else float(np.mean(per_class))


def kappa(matrix: np.ndarray, weights: str | None = None) -> float | None:
    """Cohen's kappa from a confusion matrix, optionally quadratic-weighted; None if undefined."""
    n_classes = matrix.shape[0]
    total = matrix.sum()
    if total == 0:
        return None
    if weights is None:
        disagreement = 1.0 - np.eye(n_classes)
    elif weights == "quadratic":
        grid = np.arange(n_classes)
        disagreement = (grid[:, None] - grid[None, :]) ** 2 / float((n_classes - 1) ** 2)
    else:
        raise ValueError(f"weights must be None or 'quadratic', got {weights!r}")
    expected = np.outer(matrix.sum(axis=1), matrix.sum(axis=0)) / total
    chance = (disagreement * expected).sum()
    if chance == 0:
        return None
    return float(1.0 - (disagreement * matrix).sum() / chance)


def confusion_metrics(matrix: np.ndarray) -> dict[str, float | None]:
    """accuracy, balanced_accuracy, f1_macro, kappa (+ sensitivity/specificity when binary)."""
    total = matrix.sum()
    true_pos = np.diag(matrix).astype(float)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    recall = np.divide(true_pos, support, out=np.zeros_like(true_pos), where=support > 0)
    f1_denominator = support + predicted
    f1 = np.divide(2 * true_pos, f1_denominator, out=np.zeros_like(true_pos), where=f1_denominator > 0)
    result: dict[str, float | None] = {
        "accuracy": float(true_pos.sum() / total) if total else None,
        "balanced_accuracy": float(recall[support > 0].mean()) if (support > 0).any() else None,
        "f1_macro": float(f1.mean()),
        "kappa": kappa(matrix),
    }
    if matrix.shape[0] == 2:
        result["sensitivity"] = float(recall[1]) if support[1] else None
        result["specificity"] = float(recall[0]) if support[0] else None
    return result


def expected_calibration_error(y_true: np.ndarray, probabilities: np.ndarray, n_bins: int = 10) -> float:
    """ECE of the top-class confidence over equal-width bins (Guo et al. 2017)."""
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == y_true).astype(float)
    bin_of = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    count = np.bincount(bin_of, minlength=n_bins)
    gap = np.bincount(bin_of, weights=correct - confidence, minlength=n_bins)
    return float(np.abs(gap).sum() / max(count.sum(), 1))


def classification_metrics(
    y_true: Sequence[int],
    probabilities: np.ndarray,
    patients: Sequence[object],
    *,
    ordinal: bool = False,
    n_boot: int = 1000,
    seed: int = 0,
    y_pred: Sequence[int] | None = None,
) -> dict[str, object]:
    """Metrics for clip predictions, each with a ``<name>_ci`` from a patient bootstrap.

    Args:
        y_true: true class index per clip.
        probabilities: (N, K) predicted class probabilities.
        patients: patient id per clip; the bootstrap resamples whole patients.
        ordinal: also report ``kappa_quadratic`` (for the ordered schemes lus4 and bline3).
        n_boot: bootstrap replicates; 0 leaves out the CIs.
        seed: bootstrap seed.
        y_pred: the decided class per clip (a model's operating point,
            lungus.operating_point); default: the largest probability.
    """
    y_true = np.asarray(y_true, dtype=int)
    probabilities = np.asarray(probabilities, dtype=float)
    if probabilities.ndim != 2 or probabilities.shape[0] != y_true.shape[0]:
        raise ValueError(f"probabilities must be (N, K) with N={y_true.shape[0]}, got {probabilities.shape}")
    if len(patients) != y_true.shape[0]:
        raise ValueError(f"need one patient per clip: got {len(patients)} patients for {y_true.shape[0]} clips")
    if y_true.size == 0:
        raise ValueError("no clips to evaluate")
    n_classes = probabilities.shape[1]
    if y_true.min() < 0 or y_true.max() >= n_classes:
        raise ValueError(f"true labels must lie in 0..{n_classes - 1}")
    y_pred = probabilities.argmax(axis=1) if y_pred is None else np.asarray(y_pred, dtype=int)
    if y_pred.shape != y_true.shape or (y_pred.size and (y_pred.min() < 0 or y_pred.max() >= n_classes)):
        raise ValueError(f"y_pred must hold one class index in 0..{n_classes - 1} per clip")

    def statistics(index: np.ndarray) -> dict[str, float | None]:
        matrix = confusion(y_true[index], y_pred[index], n_classes)
        values = confusion_metrics(matrix)
        values["auc"] = auc(y_true[index], probabilities[index])
        values["ece"] = expected_calibration_error(y_true[index], probabilities[index])
        if ordinal:
            values["kappa_quadratic"] = kappa(matrix, "quadratic")
        return values

    point = statistics(np.arange(y_true.size))
    replicate_values = [statistics(index) for index in patient_bootstrap_indices(patients, n_boot, seed)] if n_boot else []
    metrics: dict[str, object] = {}
    for name in ("auc", "accuracy", "balanced_accuracy", "sensitivity", "specificity", "f1_macro", "kappa",
                 "kappa_quadratic", "ece"):
        if name not in point:
            continue
        metrics[name] = point[name]
        if replicate_values:
            metrics[f"{name}_ci"] = bootstrap_ci(_picker(name), replicate_values)
    metrics["n_clips"] = int(y_true.size)
    metrics["n_patients"] = len(set(map(str, patients)))
    metrics["confusion_matrix"] = confusion(y_true, y_pred, n_classes).tolist()
    return metrics


def _picker(name: str) -> Callable[[dict[str, float | None]], float | None]:
    return lambda values: values[name]


def decided_classes(predictions: Sequence[dict]) -> np.ndarray | None:
    """The class each prediction was decided as (its ``pred``, set by an operating point), or
    None when they carry none (decide by the largest probability)."""
    if not predictions or any(p.get("pred") is None for p in predictions):
        return None
    return np.asarray([p["pred"] for p in predictions], dtype=int)
