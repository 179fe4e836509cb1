"""A card's operating point: validation, recalibration and the decision (torch-free)."""

import numpy as np
import pytest

from lungus.operating_point import OperatingPoint, decide, parse_threshold_rule, with_bline_score


def test_the_decision_is_the_first_class_below_the_threshold_and_the_likeliest_bline_class_above():
    point = OperatingPoint(threshold=0.7)
    probabilities = np.array([[0.35, 0.25, 0.40],   # P(B-lines) 0.65 < 0.7: no B-lines, though not argmax
                              [0.25, 0.45, 0.30],   # 0.75: the likeliest B-line class
                              [0.20, 0.30, 0.50]])
    assert point.decide(probabilities).tolist() == [0, 1, 2]


def test_without_an_operating_point_the_largest_probability_decides():
    probabilities = np.array([[0.35, 0.25, 0.40], [0.6, 0.3, 0.1]])
    assert decide(probabilities, None).tolist() == [2, 0]


def test_a_threshold_of_one_half_decides_two_classes_as_the_largest_probability():
    p1 = np.linspace(0.01, 0.99, 40)  # no exact tie at 0.5 (where the threshold calls B-lines)
    probabilities = np.stack([1 - p1, p1], axis=1)
    assert OperatingPoint(threshold=0.5).decide(probabilities).tolist() == probabilities.argmax(axis=1).tolist()


def test_temperature_keeps_the_ranking_and_softens_the_probabilities():
    p1 = np.array([0.02, 0.3, 0.55, 0.9, 0.99])
    probabilities = np.stack([1 - p1, p1], axis=1)
    calibrated = OperatingPoint(calibration="temperature", temperature=2.0).calibrate(probabilities)
    assert np.argsort(calibrated[:, 1]).tolist() == np.argsort(p1).tolist()
    assert np.all(np.abs(calibrated[:, 1] - 0.5) < np.abs(p1 - 0.5))
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)


def test_isotonic_maps_the_bline_score_and_keeps_the_bline_classes_shares():
    point = OperatingPoint(calibration="isotonic", isotonic_x=(0.0, 0.5, 1.0), isotonic_y=(0.0, 0.2, 1.0))
    calibrated = point.calibrate(np.array([[0.5, 0.375, 0.125]]))  # B-line score 0.5 -> 0.2, shares 3:1
    np.testing.assert_allclose(calibrated, [[0.8, 0.15, 0.05]])


def test_with_bline_score_splits_evenly_when_the_bline_classes_had_nothing():
    np.testing.assert_allclose(with_bline_score(np.array([1.0, 0.0, 0.0]), np.array(0.4)), [0.6, 0.2, 0.2])


def test_a_card_field_round_trips():
    point = OperatingPoint(threshold=0.62, calibration="isotonic", isotonic_x=(0.1, 0.9), isotonic_y=(0.0, 1.0),
                           rule="youden", chosen_on="validation split: 30 clips", fitted={"clips": 30})
    assert OperatingPoint.from_card_field(point.to_card_field()) == point
    assert OperatingPoint.from_card_field({}) is None


@pytest.mark.parametrize("field, problem", [
    ({"threshold": 1.5}, "threshold must be a probability"),
    ({"threshold": "0.5"}, "threshold must be a probability"),
    ({"calibration": "platt"}, "calibration 'platt' is not one of"),
    ({"calibration": "isotonic", "isotonic_x": [0.5], "isotonic_y": [0.5]}, "2 to"),
    ({"calibration": "isotonic", "isotonic_x": [0.9, 0.1], "isotonic_y": [0, 1]}, "non-decreasing"),
    ({"temperature": 0}, "temperature must be"),
    ({"thresold": 0.5}, "unknown field 'thresold'"),
])
def test_a_damaged_card_field_is_refused_saying_what_is_wrong(field, problem):
    with pytest.raises(ValueError, match=problem):
        OperatingPoint.from_card_field(field)


@pytest.mark.parametrize("rule", ["youden", "sensitivity:0.9", "specificity:0.85", "fixed:0.3"])
def test_threshold_rules_parse(rule):
    name, value = parse_threshold_rule(rule)
    assert rule.startswith(name) and (value is None) == (rule == "youden")


@pytest.mark.parametrize("rule", ["sensitivity", "sensitivity:90", "fixed:x", "youden:0.5", "roc"])
def test_a_bad_threshold_rule_says_how_to_write_one(rule):
    with pytest.raises(ValueError, match="e.g. sensitivity:0.9"):
        parse_threshold_rule(rule)
