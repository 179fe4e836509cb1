"""Segmentation metrics (docs/architecture.md#evaluation-outputs keys dice_<class>, iou_<class>, count_mae, loc_f1) with CIs.

Each clip is reduced to a SegmentationTally of sums (overlaps, pixel confusion, count errors,
localisation matches). Every metric is a ratio of sums, so a patient-bootstrap replicate is
a sum over its clips' tallies: pooled Dice, not a mean of per-frame Dice, which would let
empty frames dominate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from lungus.data.labels.schemes import SEG_CLASSES
from lungus.evaluate.bootstrap import patient_bootstrap_indices, percentile_ci


def class_slug(name: str) -> str:
    """Metric-key form of a class name: 'confluent B-line' -> 'confluent_b_line'."""
    return name.lower().replace("-", "_").replace(" ", "_")


@dataclass
class SegmentationTally:
    """Sums over the frames of one clip."""

    pixel_confusion: np.ndarray  # (K, K) truth x prediction pixel counts
    count_abs_error: float
    n_frames: int
    loc_true_pos: int
    loc_false_pos: int
    loc_false_neg: int

    def __add__(self, other: SegmentationTally) -> SegmentationTally:
        return SegmentationTally(
            self.pixel_confusion + other.pixel_confusion,
            self.count_abs_error + other.count_abs_error,
            self.n_frames + other.n_frames,
            self.loc_true_pos + other.loc_true_pos,
            self.loc_false_pos + other.loc_false_pos,
            self.loc_false_neg + other.loc_false_neg,
        )


def match_positions(predicted: Sequence[float], truth: Sequence[float], tolerance: float) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of one frame's B-line positions.

    One-to-one matching that maximises the number of pairs closer than ``tolerance``
    (Hungarian assignment on the distance matrix, pairs beyond tolerance discarded).
    """
    if len(predicted) == 0 or len(truth) == 0:
        return 0, len(predicted), len(truth)
    distance = np.abs(np.subtract.outer(np.asarray(predicted, float), np.asarray(truth, float)))
    cost = np.where(distance <= tolerance, distance, 1e6)
    rows, cols = linear_sum_assignment(cost)
    matched = int((distance[rows, cols] <= tolerance).sum())
    return matched, len(predicted) - matched, len(truth) - matched


def tally_clip(
    predicted_masks: np.ndarray,
    true_masks: np.ndarray,
    predicted_positions: Sequence[Sequence[float]],
    true_positions: Sequence[Sequence[float]],
    tolerance: float,
    n_classes: int = len(SEG_CLASSES),
) -> SegmentationTally:
    """Reduce one clip's (T, H, W) class masks and per-frame B-line positions to sums.

    Counts are the lengths of the per-frame position lists, so count error and
    localisation come from the same B-line instances.
    """
    if predicted_masks.shape != true_masks.shape:
        raise ValueError(f"mask shapes differ: {predicted_masks.shape} vs {true_masks.shape}")
    if not (len(predicted_positions) == len(true_positions) == predicted_masks.shape[0]):
        raise ValueError("need one list of B-line positions per frame for both predictions and truth")
    flat = true_masks.astype(np.int64).ravel() * n_classes + predicted_masks.astype(np.int64).ravel()
    pixel_confusion = np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    true_pos = false_pos = false_neg = 0
    count_error = 0.0
    for predicted, truth in zip(predicted_positions, true_positions):
        tp, fp, fn = match_positions(predicted, truth, tolerance)
        true_pos, false_pos, false_neg = true_pos + tp, false_pos + fp, false_neg + fn
        count_error += abs(len(predicted) - len(truth))
    return SegmentationTally(pixel_confusion, count_error, int(predicted_masks.shape[0]),
                             true_pos, false_pos, false_neg)


def _metrics_of(total: SegmentationTally) -> dict[str, float | None]:
    confusion = total.pixel_confusion.astype(float)
    overlap = np.diag(confusion)
    truth = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    values: dict[str, float | None] = {}
    for seg_class in SEG_CLASSES[1:]:
        k = seg_class.id
        union = truth[k] + predicted[k] - overlap[k]
        slug = class_slug(seg_class.name)
        # Dice is undefined when a class is absent from both truth and prediction.
        values[f"dice_{slug}"] = None if union == 0 else float(2 * overlap[k] / (truth[k] + predicted[k]))
        values[f"iou_{slug}"] = None if union == 0 else float(overlap[k] / union)
    values["count_mae"] = total.count_abs_error / total.n_frames if total.n_frames else None
    matches = 2 * total.loc_true_pos + total.loc_false_pos + total.loc_false_neg
    values["loc_f1"] = None if matches == 0 else 2 * total.loc_true_pos / matches
    return values


def segmentation_metrics(
    tallies: Sequence[SegmentationTally],
    patients: Sequence[object],
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, object]:
    """Pooled metrics over clips, each with a ``_ci`` from a patient bootstrap."""
    if len(tallies) != len(patients):
        raise ValueError(f"need one patient per clip: {len(patients)} patients for {len(tallies)} clips")
    if not tallies:
        raise ValueError("no clips to evaluate")
    point = _metrics_of(sum(tallies[1:], tallies[0]))
    replicates = [
        _metrics_of(sum((tallies[i] for i in index[1:]), tallies[index[0]]))
        for index in patient_bootstrap_indices(patients, n_boot, seed)
    ] if n_boot else []
    metrics: dict[str, object] = {}
    for name, value in point.items():
        metrics[name] = value
        if replicates:
            metrics[f"{name}_ci"] = percentile_ci([r[name] for r in replicates])
    metrics["n_clips"] = len(tallies)
    metrics["n_patients"] = len(set(map(str, patients)))
    metrics["n_frames"] = int(sum(t.n_frames for t in tallies))
    return metrics


def normalised_pixel_confusion(tallies: Sequence[SegmentationTally]) -> np.ndarray:
    """Row-normalised (per true class) pixel confusion over all clips."""
    confusion = sum(t.pixel_confusion for t in tallies).astype(float)
    rows = confusion.sum(axis=1, keepdims=True)
    return np.divide(confusion, rows, out=np.zeros_like(confusion), where=rows > 0)
