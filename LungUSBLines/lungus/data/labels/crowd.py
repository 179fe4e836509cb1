"""Crowd label aggregation: majority vote, soft labels and Dawid-Skene EM.

Counts are (N, K) arrays: opinions per clip and class. Per-rater opinions are three
parallel integer arrays (clip index, rater index, class index), one entry per opinion.

Majority-vote tie rule (classes are ordered, as in every scheme here): among the
classes tied for most votes, take the one nearest the mean opinion (the vote's centre
of mass); if still tied, the lower class. Examples in bline3 (none, discrete,
confluent): 1 none + 2 discrete + 2 confluent -> mean 1.2 -> discrete; 2 none + 2
discrete -> mean 0.5, equidistant -> none (the lower class).
Clips with no opinions get -1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _as_counts(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[1] < 2:
        raise ValueError(f"counts must be an (N, K) array with K >= 2 classes, got shape {counts.shape}")
    if np.any(counts < 0) or not np.all(np.isfinite(counts)):
        raise ValueError("counts must be finite and non-negative")
    return counts.astype(float)


def majority_vote(counts: np.ndarray) -> np.ndarray:
    """Hard label per clip from (N, K) opinion counts (-1 where a clip has none); ties as the module says."""
    counts = _as_counts(counts)
    n_classes = counts.shape[1]
    totals = counts.sum(axis=1)
    classes = np.arange(n_classes)
    mean = np.divide(counts @ classes, totals, out=np.zeros(len(counts)), where=totals > 0)
    tied = counts == counts.max(axis=1, keepdims=True)
    # Rank tied classes by distance to the mean, then by index: one sort key, smallest wins.
    key = np.abs(classes[None, :] - mean[:, None]) * (n_classes + 1) + classes[None, :]
    key = np.where(tied, key, np.inf)
    labels = key.argmin(axis=1)
    labels[totals == 0] = -1
    return labels


def soft_labels(counts: np.ndarray, smoothing: float = 0.0) -> np.ndarray:
    """Opinion distributions (N, K): (counts + smoothing) / (total + K * smoothing).

    smoothing is an additive (Laplace) pseudo-count per class; 0 keeps the raw
    distribution. Clips with no opinions get an all-zero row when smoothing is 0
    (no information) and the uniform distribution otherwise.
    """
    if smoothing < 0:
        raise ValueError(f"smoothing must be >= 0, got {smoothing}")
    counts = _as_counts(counts) + smoothing
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


@dataclass
class DawidSkeneResult:
    """What Dawid-Skene learned.

    posteriors: (N, K) probability of each true class per clip (class prior for clips
        with no opinions).
    confusion: (R, K, K) each rater's estimated C[true, given].
    accuracy: (R,) each rater's estimated accuracy: the posterior-expected fraction of
        that rater's own answers that are right (NaN for a rater with no opinions).
    n_labels: (R,) opinions per rater.
    class_prior: (K,) estimated class frequencies.
    """

    posteriors: np.ndarray
    confusion: np.ndarray
    accuracy: np.ndarray
    n_labels: np.ndarray
    class_prior: np.ndarray
    log_likelihood: float
    n_iter: int
    converged: bool

    @property
    def labels(self) -> np.ndarray:
        """Most probable class per clip (ties: lower class)."""
        return self.posteriors.argmax(axis=1)


def _validate_opinions(clips, raters, labels, n_clips, n_raters, n_classes):
    clips, raters, labels = (np.asarray(a, dtype=np.int64).reshape(-1) for a in (clips, raters, labels))
    if not len(clips) == len(raters) == len(labels):
        raise ValueError("clips, raters and labels must have one entry per opinion (equal lengths)")
    for name, values, bound in (
        ("clips", clips, n_clips),
        ("raters", raters, n_raters),
        ("labels", labels, n_classes),
    ):
        if len(values) and (values.min() < 0 or values.max() >= bound):
            raise ValueError(f"{name} indices must be in [0, {bound}); got {values.min()}..{values.max()}")
    return clips, raters, labels


def dawid_skene(
    clips: np.ndarray,
    raters: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    *,
    n_clips: int | None = None,
    n_raters: int | None = None,
    diagonal_prior: float = 2.0,
    off_diagonal_prior: float = 0.5,
    max_iter: int = 200,
    tol: float = 1e-7,
) -> DawidSkeneResult:
    """Dawid & Skene (1979) EM over per-rater opinions.

    Starts from the opinion distribution of each clip (the majority-vote start of the
    original paper). Each rater's confusion rows get additive pseudo-counts
    (``diagonal_prior`` on the right answer, ``off_diagonal_prior`` on each wrong one;
    the Dirichlet posterior mean), so a rater with a handful of opinions stays near a
    better-than-chance reader instead of a perfect or useless one, and no confusion
    entry is ever zero (a zero would make one odd answer veto a class for good).
    Vectorised: each iteration is a few bincounts over the opinions.
    """
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}")
    if diagonal_prior <= 0 or off_diagonal_prior <= 0:
        raise ValueError("diagonal_prior and off_diagonal_prior must be > 0 (pseudo-counts)")
    clips_arr = np.asarray(clips, dtype=np.int64).reshape(-1)
    raters_arr = np.asarray(raters, dtype=np.int64).reshape(-1)
    n_clips = int(clips_arr.max() + 1 if len(clips_arr) else 0) if n_clips is None else int(n_clips)
    n_raters = int(raters_arr.max() + 1 if len(raters_arr) else 0) if n_raters is None else int(n_raters)
    clips, raters, labels = _validate_opinions(clips, raters, labels, n_clips, n_raters, n_classes)
    K = n_classes

    counts = np.zeros((n_clips, K))
    np.add.at(counts, (clips, labels), 1.0)
    posteriors = soft_labels(counts)
    unrated = counts.sum(axis=1) == 0
    posteriors[unrated] = 1.0 / K

    pseudo = np.full((K, K), off_diagonal_prior) + np.eye(K) * (diagonal_prior - off_diagonal_prior)
    rater_label = raters * K + labels  # flat index of (rater, given label)
    log_likelihood = -np.inf
    converged = False
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        # M-step: expected (rater, true, given) counts plus prior, and the class prior.
        expected = np.stack(
            [
                np.bincount(rater_label, weights=posteriors[clips, k], minlength=n_raters * K)
                for k in range(K)
            ],
            axis=1,
        ).reshape(n_raters, K, K)  # [rater, given, true]
        confusion = expected.transpose(0, 2, 1) + pseudo  # [rater, true, given]
        confusion /= np.maximum(confusion.sum(axis=2, keepdims=True), 1e-300)
        class_prior = posteriors[~unrated].sum(axis=0) + 1.0 if (~unrated).any() else np.ones(K)
        class_prior /= class_prior.sum()

        # E-step: log prior + sum of log C[rater, k, given] over each clip's opinions.
        log_conf = np.log(np.maximum(confusion, 1e-300))
        per_opinion = log_conf[raters, :, labels]  # (M, K)
        log_post = np.tile(np.log(class_prior), (n_clips, 1))
        for k in range(K):
            log_post[:, k] += np.bincount(clips, weights=per_opinion[:, k], minlength=n_clips)
        top = log_post.max(axis=1, keepdims=True)
        joint = np.exp(log_post - top)
        marginal = joint.sum(axis=1, keepdims=True)
        posteriors = joint / marginal
        new_log_likelihood = float(np.sum(top[:, 0] + np.log(marginal[:, 0])))
        if abs(new_log_likelihood - log_likelihood) <= tol * max(1.0, abs(new_log_likelihood)):
            log_likelihood = new_log_likelihood
            converged = True
            break
        log_likelihood = new_log_likelihood

    n_labels = np.bincount(raters, minlength=n_raters)
    # Posterior-expected share of the rater's answers that are right. (Judging each answer
    # against the clip's posterior without that answer was tried: it came out less accurate
    # on simulated crowds, since it discards the evidence the rater's own answer carries.)
    right = np.bincount(raters, weights=posteriors[clips, labels], minlength=n_raters)
    accuracy = np.divide(right, n_labels, out=np.full(n_raters, np.nan), where=n_labels > 0)
    return DawidSkeneResult(
        posteriors=posteriors,
        confusion=confusion,
        accuracy=accuracy,
        n_labels=n_labels,
        class_prior=class_prior,
        log_likelihood=log_likelihood,
        n_iter=n_iter,
        converged=converged,
    )
