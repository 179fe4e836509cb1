"""Metrics of per-clip predictions (lungus.predict.eval_sets): what validation during training
and `lungus evaluate` both report."""

from __future__ import annotations

from typing import Any

import numpy as np

Predictions = list[dict[str, Any]]


def classification_summary(predictions: Predictions, *, ordinal: bool,
                           n_boot: int = 0) -> tuple[dict[str, Any], Predictions]:
    """(metrics, predictions in clip-index order) of a clip classifier; the metrics add the
    mean log-loss of the targets (``loss``)."""
    from lungus.evaluate.metrics import classification_metrics

    predictions = sorted(predictions, key=lambda p: p["index"])
    targets = np.asarray([p["target"] for p in predictions])
    probabilities = np.asarray([p["probabilities"] for p in predictions])
    metrics = classification_metrics(targets.argmax(axis=1), probabilities, [p["patient"] for p in predictions],
                                     ordinal=ordinal, n_boot=n_boot)
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
