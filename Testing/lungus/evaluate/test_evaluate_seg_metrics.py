import numpy as np
import pytest

from lungus.data.labels.schemes import B_LINE, PLEURA
from lungus.evaluate.seg_metrics import match_positions, segmentation_metrics, tally_clip


def _masks():
    truth = np.zeros((2, 20, 20), np.uint8)
    truth[:, 5, :] = PLEURA
    truth[:, 6:, 4:6] = B_LINE
    predicted = truth.copy()
    predicted[:, 6:, 6:8] = B_LINE  # one extra 2-px-wide B-line column pair
    return predicted, truth


def test_dice_and_iou_from_known_overlap():
    predicted, truth = _masks()
    tally = tally_clip(predicted, truth, [[5.0, 7.0]] * 2, [[5.0]] * 2, tolerance=1.0)
    m = segmentation_metrics([tally], ["p"], n_boot=0)
    # B-line: truth 2*14*2=56 px, prediction 112 px, overlap 56.
    assert m["dice_b_line"] == pytest.approx(2 * 56 / (56 + 112))
    assert m["iou_b_line"] == pytest.approx(56 / 112)
    assert m["dice_pleural_line"] == pytest.approx(1.0)
    assert m["dice_rib_shadow"] is None  # absent from both


def test_count_mae_and_localisation_f1():
    predicted, truth = _masks()
    tally = tally_clip(predicted, truth, [[5.0, 7.0], [5.0]], [[5.0], [9.0]], tolerance=1.0)
    m = segmentation_metrics([tally], ["p"], n_boot=0)
    assert m["count_mae"] == pytest.approx((1 + 0) / 2)
    # frame 0: 1 TP, 1 FP; frame 1: 0 TP, 1 FP, 1 FN.
    assert m["loc_f1"] == pytest.approx(2 * 1 / (2 * 1 + 2 + 1))


def test_matching_is_one_to_one_within_tolerance():
    assert match_positions([10.0, 11.0], [10.5], tolerance=1.0) == (1, 1, 0)
    assert match_positions([10.0, 20.0], [10.5, 19.0], tolerance=2.0) == (2, 0, 0)
    assert match_positions([10.0], [15.0], tolerance=2.0) == (0, 1, 1)
    assert match_positions([], [3.0], tolerance=2.0) == (0, 0, 1)


def test_bootstrap_ci_over_patients():
    predicted, truth = _masks()
    good = tally_clip(truth, truth, [[5.0]] * 2, [[5.0]] * 2, 1.0)
    bad = tally_clip(predicted, truth, [[5.0, 7.0]] * 2, [[5.0]] * 2, 1.0)
    m = segmentation_metrics([good, bad, good], ["a", "b", "c"], n_boot=300)
    low, high = m["dice_b_line_ci"]
    assert low < m["dice_b_line"] < high == pytest.approx(1.0)
    assert m["n_frames"] == 6
