"""Choosing operating points: thresholds by rule, recalibration, checked against scikit-learn."""

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from lungus.evaluate.metrics import expected_calibration_error
from lungus.evaluate.operating_points import choose_operating_point, choose_threshold, fit_temperature


def _scores(seed=0, n=400):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, 1 / (1 + np.exp(-(1.5 * y - 0.2 + rng.normal(0, 1, n))))


def _rates(y, score, threshold):
    called = score >= threshold
    return called[y == 1].mean(), (~called)[y == 0].mean()


def test_youden_reaches_the_largest_j_on_the_roc_curve():
    y, score = _scores()
    fpr, tpr, _ = roc_curve(y, score)
    sensitivity, specificity = _rates(y, score, choose_threshold(y, score, "youden"))
    assert sensitivity + specificity - 1 == pytest.approx((tpr - fpr).max())


def test_a_threshold_falls_between_two_fitted_scores():
    y, score = _scores()
    threshold = choose_threshold(y, score, "youden")
    assert not np.isclose(score, threshold).any()


@pytest.mark.parametrize("target", [0.8, 0.9, 0.95])
def test_a_target_sensitivity_is_met_with_the_best_specificity_left(target):
    y, score = _scores(1)
    threshold = choose_threshold(y, score, f"sensitivity:{target}")
    sensitivity, specificity = _rates(y, score, threshold)
    assert sensitivity >= target
    next_higher = np.min(score[score > threshold])  # the next cut up loses the target
    assert _rates(y, score, next_higher + 1e-9)[0] < target


@pytest.mark.parametrize("target", [0.8, 0.9])
def test_a_target_specificity_is_met_with_the_best_sensitivity_left(target):
    y, score = _scores(2)
    threshold = choose_threshold(y, score, f"specificity:{target}")
    assert _rates(y, score, threshold)[1] >= target
    next_lower = np.max(score[score < threshold])
    assert _rates(y, score, next_lower)[1] < target


def test_a_fixed_threshold_is_kept():
    y, score = _scores()
    assert choose_threshold(y, score, "fixed:0.3") == 0.3


def test_one_class_only_cannot_choose_a_threshold():
    with pytest.raises(ValueError, match="with and without B-lines"):
        choose_threshold(np.ones(5), np.linspace(0.1, 0.9, 5), "youden")


def test_temperature_fit_recovers_the_temperature_that_made_overconfident_scores():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 1.5, 4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-logits))).astype(int)  # calibrated at these logits
    overconfident = 1 / (1 + np.exp(-3 * logits))                    # as if divided by T = 1/3
    probabilities = np.stack([1 - overconfident, overconfident], axis=1)
    assert fit_temperature(y, probabilities) == pytest.approx(3.0, rel=0.1)


@pytest.mark.parametrize("calibration", ["temperature", "isotonic"])
def test_recalibration_lowers_the_ece_of_miscalibrated_scores(calibration):
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 1.5, 2000)
    y = (rng.random(2000) < 1 / (1 + np.exp(-logits))).astype(int)
    p1 = 1 / (1 + np.exp(-(3 * logits + 1)))
    probabilities = np.stack([1 - p1, p1], axis=1)
    point = choose_operating_point(y, probabilities, calibration=calibration, chosen_on="test")
    assert point.fitted["ece_recalibrated"] < point.fitted["ece"] / 2
    assert point.fitted["ece"] == pytest.approx(expected_calibration_error(y, probabilities))
    assert point.calibration == calibration and point.chosen_on == "test"


def test_the_chosen_point_records_its_sensitivity_and_specificity():
    y, score = _scores()
    point = choose_operating_point(y, np.stack([1 - score, score], axis=1), rule="sensitivity:0.9")
    assert point.fitted["clips"] == y.size
    assert point.fitted["sensitivity"] >= 0.9
    assert (point.fitted["sensitivity"], point.fitted["specificity"]) == pytest.approx(
        _rates(y, score, point.threshold))


def test_multiclass_uses_the_bline_score():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 300)
    raw = rng.dirichlet(np.ones(3), 300) + np.eye(3)[y]
    probabilities = raw / raw.sum(axis=1, keepdims=True)
    point = choose_operating_point(y, probabilities)
    decided = point.decide(probabilities)
    assert ((decided > 0) == (1 - probabilities[:, 0] >= point.threshold)).all()
