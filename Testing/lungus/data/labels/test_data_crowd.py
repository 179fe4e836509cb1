"""Crowd aggregation: majority vote, soft labels, Dawid-Skene recovery on simulated crowds."""

from __future__ import annotations

import numpy as np
import pytest

from lungus.data.labels.crowd import dawid_skene, majority_vote, soft_labels
from lungus.sim.raters import RaterConfig, simulate_raters

CLASSES = ("none", "discrete", "confluent")
# "Enough labels" for the recovery check: a rater's accuracy is a mean over their own
# opinions, so with fewer than 50 a single wrong consensus moves it by more than 0.02.
MIN_LABELS = 50


def _simulated_crowd(n_clips: int, seed: int, config: RaterConfig):
    rng = np.random.default_rng(seed)
    truth = rng.choice(CLASSES, size=n_clips, p=[0.4, 0.4, 0.2]).tolist()
    patients = [f"p{i // 10:03d}" for i in range(n_clips)]
    result = simulate_raters(truth, patients, seed=seed, config=config)
    index = {rater: j for j, rater in enumerate(result.rater_ids)}
    clips = np.array([clip for clip, _, _ in result.opinions])
    raters = np.array([index[rater] for _, rater, _ in result.opinions])
    labels = np.array([CLASSES.index(label) for _, _, label in result.opinions])
    fit = dawid_skene(clips, raters, labels, 3, n_clips=n_clips, n_raters=len(index))
    return result, fit


def test_majority_vote_tie_rule():
    counts = np.array(
        [
            [3, 1, 0],  # clear winner
            [2, 2, 0],  # tie none/discrete, mean 0.5 equidistant -> lower class
            [1, 2, 2],  # tie discrete/confluent, mean 1.2 -> discrete (nearer)
            [0, 2, 3],  # clear winner
            [2, 0, 2],  # tie none/confluent, mean 1.0 equidistant -> lower class
            [0, 0, 0],  # no opinions
        ]
    )
    np.testing.assert_array_equal(majority_vote(counts), [0, 0, 1, 2, 0, -1])


def test_soft_labels_with_and_without_smoothing():
    counts = np.array([[3, 1, 0], [0, 0, 0]])
    np.testing.assert_allclose(soft_labels(counts), [[0.75, 0.25, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(
        soft_labels(counts, smoothing=1.0), [[4 / 7, 2 / 7, 1 / 7], [1 / 3, 1 / 3, 1 / 3]]
    )
    with pytest.raises(ValueError, match="smoothing"):
        soft_labels(counts, smoothing=-1)


def test_dawid_skene_with_perfect_raters_is_certain_and_right():
    truth = np.array([0, 1, 2, 1, 0, 2])
    clips = np.repeat(np.arange(6), 3)
    raters = np.tile(np.arange(3), 6)
    fit = dawid_skene(clips, raters, truth[clips], 3)
    np.testing.assert_array_equal(fit.labels, truth)
    assert fit.converged
    assert (fit.posteriors.max(axis=1) > 0.95).all()


def test_dawid_skene_unrated_clip_gets_the_class_prior_and_few_label_rater_stays_finite():
    clips = np.array([0, 0, 1, 1, 2])
    raters = np.array([0, 1, 0, 1, 2])  # rater 2 gave a single opinion
    labels = np.array([0, 0, 2, 2, 1])
    fit = dawid_skene(clips, raters, labels, 3, n_clips=4, n_raters=3)
    np.testing.assert_allclose(fit.posteriors[3], fit.class_prior)
    assert np.isfinite(fit.confusion).all() and (fit.confusion > 0).all()
    assert fit.n_labels.tolist() == [2, 2, 1]


def test_dawid_skene_rejects_out_of_range_indices():
    with pytest.raises(ValueError, match="labels indices"):
        dawid_skene([0], [0], [3], 3)
    with pytest.raises(ValueError, match="equal lengths"):
        dawid_skene([0, 1], [0], [0], 3)


def test_dawid_skene_recovers_each_raters_accuracy_within_005():
    # 400 clips, 40 raters (a third spammers), 20 opinions per clip, seed 11.
    config = RaterConfig(n_crowd=40, opinions_per_clip=20, spammer_share=1 / 3)
    result, fit = _simulated_crowd(400, seed=11, config=config)
    true_accuracy = np.array([result.rater_accuracy[r] for r in result.rater_ids])
    enough = fit.n_labels >= MIN_LABELS
    assert enough.sum() >= 30  # the check covers most of the crowd, spammers included
    kinds = np.array([result.rater_kind[r] for r in result.rater_ids])
    assert (kinds[enough] != "crowd").sum() >= 8
    errors = np.abs(fit.accuracy - true_accuracy)[enough]
    assert errors.max() < 0.05, f"worst rater off by {errors.max():.3f}"


def test_dawid_skene_beats_majority_vote_when_a_third_are_spammers():
    config = RaterConfig(n_crowd=60, opinions_per_clip=7, spammer_share=1 / 3)
    result, fit = _simulated_crowd(500, seed=5, config=config)
    majority_accuracy = np.mean(majority_vote(result.crowd_counts) == result.truth)
    ds_accuracy = np.mean(fit.labels == result.truth)
    assert ds_accuracy > majority_accuracy + 0.05, (ds_accuracy, majority_accuracy)
