"""Operating points of trained classifiers (docs/evaluation.md#operating-points): chosen on clips
the model did not train on, by the run's ``threshold_rule`` and ``calibration``.

- one run: its validation split (:func:`lungus.train.loop.validation_operating_point`);
- a seed ensemble: the ensemble's predictions on that split;
- cross-validation: each fold model's on the out-of-fold predictions of the *other* folds
  (cross-fitted, so the held-out fold that scores it never chose its threshold), and the fold
  ensemble's (RUN/model.pt) on all out-of-fold predictions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lungus.operating_point import OperatingPoint
from lungus.train.config import TrainConfig

Predictions = list[dict[str, Any]]


def choose_on_predictions(predictions: Predictions, config: TrainConfig, chosen_on: str,
                          log: Callable[[str], None] = print) -> OperatingPoint | None:
    """The operating point ``config`` asks for, chosen on these clip predictions (each with its
    one-hot ``target`` and ``probabilities``); None (with a note in the log) when they do not hold
    clips with and without B-lines."""
    from lungus.evaluate.operating_points import choose_operating_point

    if not predictions:
        return None
    y_true = np.asarray([np.argmax(p["target"]) for p in predictions])
    probabilities = np.asarray([p["probabilities"] for p in predictions], dtype=float)
    try:
        point = choose_operating_point(y_true, probabilities, rule=config.threshold_rule,
                                       calibration=config.calibration, chosen_on=chosen_on)
    except ValueError as error:
        log(f"no decision threshold chosen ({error}); the card decides by the largest probability")
        return None
    log(f"operating point: {point.describe()}; there sensitivity {point.fitted['sensitivity']:.2f}, "
        f"specificity {point.fitted['specificity']:.2f}")
    return point


def decided(predictions: Predictions, point: OperatingPoint | None) -> Predictions:
    """Copies of ``predictions`` with probabilities recalibrated and the class decided (``pred``)
    as ``point`` says (by the largest probability without one)."""
    out = []
    for p in predictions:
        probabilities = np.asarray(p["probabilities"], dtype=float)
        if point is not None:
            probabilities = point.calibrate(probabilities)
            pred = int(point.decide(probabilities)[0])
        else:
            pred = int(np.argmax(probabilities))
        out.append({**p, "probabilities": probabilities.tolist(), "pred": pred})
    return out


def cross_fitted_points(fold_predictions: Sequence[Predictions], config: TrainConfig,
                        log: Callable[[str], None] = print) -> list[OperatingPoint | None]:
    """Fold k's operating point, chosen on the out-of-fold predictions of every other fold."""
    points = []
    for k in range(len(fold_predictions)):
        others = [p for j, fold in enumerate(fold_predictions) if j != k for p in fold]
        patients = len({p["patient"] for p in others})
        log(f"fold {k + 1}/{len(fold_predictions)}:")
        points.append(choose_on_predictions(
            others, config, f"out-of-fold predictions of the other {len(fold_predictions) - 1} folds: "
            f"{len(others)} clips of {patients} patients", log))
    return points
