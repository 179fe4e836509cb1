"""Metrics of per-clip predictions (lungus.predict.eval_sets): what validation during training
and `lungus evaluate` both report."""

from __future__ import annotations

from typing import Any

import numpy as np

Predictions = list[dict[str, Any]]


#: The metrics of a decision (not of the probabilities): what an operating point changes.
DECISION_METRICS = ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "f1_macro", "kappa",
                    "kappa_quadratic")
#: The key under which metrics at P(B-lines) = 0.5 sit beside those at a model's own threshold.
AT_HALF = "at_0.5"


def decided_classes(predictions: Predictions) -> np.ndarray | None:
    """The class each prediction was decided as (its ``pred``, set by an operating point), or
    None when they carry none (decide by the largest probability)."""
    if not predictions or any(p.get("pred") is None for p in predictions):
        return None
    return np.asarray([p["pred"] for p in predictions], dtype=int)


def classification_summary(predictions: Predictions, *, ordinal: bool,
                           n_boot: int = 0) -> tuple[dict[str, Any], Predictions]:
    """(metrics, predictions in clip-index order) of a clip classifier; the metrics add the
    mean log-loss of the targets (``loss``). Predictions decided at an operating point (each
    with its ``pred``) are scored as decided, and the decision metrics at P(B-lines) = 0.5 are
    added under ``at_0.5`` (docs/evaluation.md#operating-points)."""
    from lungus.evaluate.metrics import classification_metrics
    from lungus.operating_point import OperatingPoint

    predictions = sorted(predictions, key=lambda p: p["index"])
    targets = np.asarray([p["target"] for p in predictions])
    probabilities = np.asarray([p["probabilities"] for p in predictions])
    y_true, patients, y_pred = targets.argmax(axis=1), [p["patient"] for p in predictions], decided_classes(predictions)
    metrics = classification_metrics(y_true, probabilities, patients, ordinal=ordinal, n_boot=n_boot, y_pred=y_pred)
    if y_pred is not None:
        at_half = classification_metrics(y_true, probabilities, patients, ordinal=ordinal, n_boot=n_boot,
                                         y_pred=OperatingPoint(threshold=0.5).decide(probabilities))
        metrics[AT_HALF] = {key: value for key, value in at_half.items()
                            if key.removesuffix("_ci") in DECISION_METRICS or key == "confusion_matrix"}
    metrics["loss"] = float(-np.mean(np.sum(targets * np.log(np.clip(probabilities, 1e-7, 1.0)), axis=1)))
    return metrics, predictions


def segmentation_summary(predictions: Predictions, n_boot: int = 0) -> tuple[dict[str, Any], Predictions]:
    """(metrics, predictions in clip-index order) of a frame segmenter (no clips: counts of zero)."""
    from lungus.evaluate.seg_metrics import segmentation_metrics
    from lungus.evaluate.seg_report import tally_prediction

    predictions = sorted(predictions, key=lambda p: p["index"])
    if not predictions:
        return {"n_clips": 0, "n_patients": 0}, []
    tallies = [tally_prediction(p) for p in predictions]
    return segmentation_metrics(tallies, [p["patient"] for p in predictions], n_boot=n_boot), predictions
