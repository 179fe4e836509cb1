"""Choosing a classifier's operating point (docs/evaluation.md#operating-points) on clips it did
not train on: a threshold on P(B-lines) by a rule the user picks (lungus.operating_point.
THRESHOLD_RULES), and optionally a recalibration of the probabilities fitted on the same clips.

A threshold falls halfway between the two neighbouring scores it separates, so a clip scored
exactly like a fitted one is decided the same way, and small shifts do not flip it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lungus.operating_point import (
    CALIBRATIONS,
    DEFAULT_THRESHOLD_RULE,
    OperatingPoint,
    bline_score,
    parse_threshold_rule,
    with_bline_score,
)


def choose_threshold(y_positive: np.ndarray, score: np.ndarray, rule: str = DEFAULT_THRESHOLD_RULE) -> float:
    """The threshold on ``score`` (call positive at or above it) that ``rule`` picks for the
    true labels ``y_positive`` (1: B-lines). Both classes must be present (ValueError)."""
    name, value = parse_threshold_rule(rule)
    if name == "fixed":
        return float(value)
    y = np.asarray(y_positive, dtype=bool)
    score = np.asarray(score, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"choosing a threshold needs clips with and without B-lines; these {y.size} clips "
                         f"have {n_pos} with and {n_neg} without")
    # Candidate cuts between neighbouring distinct scores (and below/above all of them).
    levels = np.unique(score)
    cuts = np.concatenate([[levels[0] / 2], (levels[:-1] + levels[1:]) / 2, [(levels[-1] + 1) / 2]])
    positive = score[None, :] >= cuts[:, None]
    sensitivity = (positive & y).sum(axis=1) / n_pos
    specificity = (~positive & ~y).sum(axis=1) / n_neg
    if name == "youden":
        j = sensitivity + specificity - 1
        best = np.flatnonzero(np.isclose(j, j.max()))
        # Ties: the middle of the tied cuts (the widest margin on either side).
        return float(cuts[best[len(best) // 2]])
    if name == "sensitivity":
        return float(cuts[np.flatnonzero(sensitivity >= value - 1e-12).max()])
    return float(cuts[np.flatnonzero(specificity >= value - 1e-12).min()])


def fit_temperature(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """The temperature T minimising the log-loss of softmax(log p / T) (Guo et al. 2017)."""
    from scipy.optimize import minimize_scalar

    logp = np.log(np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1.0))
    rows = np.arange(len(y_true))

    def loss(log_t: float) -> float:
        z = logp / np.exp(log_t)
        z -= z.max(axis=1, keepdims=True)
        return float(-(z[rows, y_true] - np.log(np.exp(z).sum(axis=1))).mean())

    fitted = minimize_scalar(loss, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(fitted.x))


def fit_isotonic(y_positive: np.ndarray, score: np.ndarray) -> tuple[list[float], list[float]]:
    """Breakpoints (x, y) of the isotonic regression of the B-line truth on the B-line score
    (scikit-learn's IsotonicRegression, clipped to [0, 1] outside the fitted range)."""
    from sklearn.isotonic import IsotonicRegression

    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(score, y_positive)
    x, y = model.X_thresholds_.astype(float), model.y_thresholds_.astype(float)
    if x.size < 2:  # one distinct score: a flat map
        x, y = np.array([0.0, 1.0]), np.array([y[0], y[0]])
    return x.tolist(), y.tolist()


def choose_operating_point(y_true: Sequence[int], probabilities: np.ndarray, *, rule: str = DEFAULT_THRESHOLD_RULE,
                           calibration: str = "none", chosen_on: str = "") -> OperatingPoint:
    """The operating point ``rule`` and ``calibration`` pick on these clips (true class index per
    clip, (N, K) probabilities); the threshold is chosen on the recalibrated B-line score. The
    point's ``fitted`` records what it saw on them."""
    from lungus.evaluate.metrics import expected_calibration_error

    if calibration not in CALIBRATIONS:
        raise ValueError(f"calibration {calibration!r} is not one of {', '.join(CALIBRATIONS)}")
    y_true = np.asarray(y_true, dtype=int)
    p = np.asarray(probabilities, dtype=np.float64)
    y_positive = (y_true > 0).astype(int)
    temperature, iso_x, iso_y = 1.0, [], []
    if calibration == "temperature":
        temperature = fit_temperature(y_true, p)
        calibrated = OperatingPoint(calibration="temperature", temperature=temperature).calibrate(p)
    elif calibration == "isotonic":
        iso_x, iso_y = fit_isotonic(y_positive, bline_score(p))
        calibrated = with_bline_score(p, np.interp(bline_score(p), iso_x, iso_y))
    else:
        calibrated = p
    threshold = choose_threshold(y_positive, bline_score(calibrated), rule)
    point = OperatingPoint(threshold=threshold, calibration=calibration, temperature=temperature,
                           isotonic_x=tuple(iso_x), isotonic_y=tuple(iso_y), rule=rule, chosen_on=chosen_on)
    decided = point.decide(calibrated) > 0
    fitted: dict[str, Any] = {
        "clips": int(y_true.size),
        "sensitivity": float(decided[y_positive == 1].mean()),
        "specificity": float((~decided)[y_positive == 0].mean()),
        "ece": expected_calibration_error(y_true, p),
    }
    if calibration != "none":
        fitted["ece_recalibrated"] = expected_calibration_error(y_true, calibrated)
    return OperatingPoint(**{**point.__dict__, "fitted": fitted})
