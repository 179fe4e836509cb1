"""Multi-rater fusion: majority vote and STAPLE recover a known truth from corrupted raters."""

from __future__ import annotations

import numpy as np
import pytest

from lungus.data.labels.fusion import StapleConfig, fuse_masks
from lungus.data.labels.schemes import A_LINE, B_LINE, CONFLUENT, PLEURA, RIB_SHADOW


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    rng = np.random.default_rng(0)
    masks = np.zeros((4, 64, 64), dtype=np.uint8)
    masks[:, 10:13] = PLEURA
    masks[:, 20:22] = A_LINE
    masks[:, 40:42] = A_LINE
    for frame in masks:
        for col in rng.integers(8, 40, 3):
            frame[13:, col : col + 4] = B_LINE
    masks[:, 13:, 45:60] = CONFLUENT
    masks[:, :, :6] = RIB_SHADOW
    return masks


def corrupt(truth: np.ndarray, share: float, seed: int) -> np.ndarray:
    """``share`` of the pixels relabelled with a random class."""
    rng = np.random.default_rng(seed)
    masks = truth.copy()
    flip = rng.random(masks.shape) < share
    masks[flip] = rng.integers(0, 6, int(flip.sum()))
    return masks


def accuracy(masks: np.ndarray, truth: np.ndarray) -> float:
    return float((masks == truth).mean())


@pytest.mark.parametrize("method", ["majority", "staple"])
def test_fusion_recovers_truth_better_than_any_rater(truth, method):
    raters = [corrupt(truth, share, seed) for share, seed in ((0.15, 1), (0.2, 2), (0.25, 3))]
    fused = fuse_masks(raters, method)
    best_rater = max(accuracy(r, truth) for r in raters)
    assert accuracy(fused.labels, truth) > best_rater + 0.05
    assert fused.labels.dtype == np.uint8 and fused.labels.shape == truth.shape


def test_staple_down_weights_a_rater_who_is_mostly_wrong(truth):
    raters = [corrupt(truth, 0.1, 4), corrupt(truth, 0.2, 5), corrupt(truth, 0.85, 6)]
    staple = fuse_masks(raters, "staple")
    majority = fuse_masks(raters, "majority")
    mean_sensitivity = staple.sensitivity.mean(axis=1)
    assert mean_sensitivity[2] < 0.4 < 0.7 < mean_sensitivity[:2].min()
    assert mean_sensitivity[0] > mean_sensitivity[1]  # the better of the two good raters ranks first
    assert accuracy(staple.labels, truth) > accuracy(majority.labels, truth) + 0.02
    assert staple.converged


def test_staple_estimates_the_raters_error_rates(truth):
    # A rater relabelling 40 % of pixels at random keeps a class with probability 0.6 + 0.4 / 6.
    raters = [corrupt(truth, 0.4, seed) for seed in (7, 8, 9, 10, 11)]
    staple = fuse_masks(raters, "staple")
    assert staple.sensitivity.mean(axis=1) == pytest.approx(np.full(5, 0.6 + 0.4 / 6), abs=0.03)
    true_prior = np.bincount(truth.ravel(), minlength=6) / truth.size
    assert staple.prior == pytest.approx(true_prior, abs=0.02)
    assert np.all((staple.specificity > 0.85) & (staple.specificity <= 1.0))


def test_agreement_is_the_share_of_raters_giving_the_fused_label():
    a = np.array([[[0, 3, 3, 1]]], dtype=np.uint8)
    b = np.array([[[0, 3, 0, 2]]], dtype=np.uint8)
    c = np.array([[[0, 0, 0, 3]]], dtype=np.uint8)
    fused = fuse_masks([a, b, c], "majority")
    assert fused.labels.tolist() == [[[0, 3, 0, 1]]]  # a three-way tie goes to the lowest class
    assert fused.agreement == pytest.approx(np.array([[[1.0, 2 / 3, 2 / 3, 1 / 3]]]))


def test_two_raters_who_disagree_leave_background():
    a = np.full((1, 2, 2), B_LINE, dtype=np.uint8)
    b = np.zeros((1, 2, 2), dtype=np.uint8)
    fused = fuse_masks([a, b], "majority")
    assert not fused.labels.any() and np.all(fused.agreement == 0.5)


@pytest.mark.parametrize("method", ["majority", "staple"])
def test_unannotated_frames_of_a_rater_are_left_out(truth, method):
    good = [corrupt(truth, 0.05, 12), corrupt(truth, 0.05, 13)]
    garbage = np.full_like(truth, CONFLUENT)
    annotated = [np.ones(4, bool), np.ones(4, bool), np.array([True, False, False, True])]
    third = np.where(np.array([1, 0, 0, 1], bool)[:, None, None], corrupt(truth, 0.05, 14), garbage)
    fused = fuse_masks([*good, third], method, annotated=annotated)
    assert fused.n_raters.tolist() == [3, 2, 2, 3]
    assert accuracy(fused.labels[1:3], truth[1:3]) > 0.95
    assert np.all(fused.agreement[1:3] <= 1.0) and set(np.unique(fused.agreement[1:3])) <= {0.5, 1.0}


def test_frames_no_rater_annotated_are_background_with_no_agreement(truth):
    none = np.zeros(4, bool)
    fused = fuse_masks([truth, truth], "staple", annotated=[none, np.array([1, 1, 0, 1], bool)])
    assert fused.annotated.tolist() == [True, True, False, True]
    assert not fused.labels[2].any() and not fused.agreement[2].any()
    assert np.array_equal(fused.labels[[0, 1, 3]], truth[[0, 1, 3]])


def test_bad_inputs_say_what_is_wrong(truth):
    with pytest.raises(ValueError, match="method must be one of"):
        fuse_masks([truth], "mean")
    with pytest.raises(ValueError, match="every rater needs"):
        fuse_masks([truth, truth[:2]])
    with pytest.raises(ValueError, match="outside 0..5"):
        fuse_masks([truth, truth + 10])
    with pytest.raises(ValueError, match="one \\(T,\\) bool array per rater"):
        fuse_masks([truth, truth], annotated=[np.ones(4, bool)])
    with pytest.raises(ValueError, match="initial_accuracy"):
        StapleConfig(initial_accuracy=1.0)
