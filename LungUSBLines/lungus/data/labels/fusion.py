"""Fusing several raters' class masks into one, pixel by pixel, with an agreement map.

Two methods (``fuse_masks(..., method=...)``):

- ``"majority"``: each pixel takes the class most raters gave it; a tie goes to the lowest
  class id (background before any finding: a finding needs a majority).
- ``"staple"``: multi-class STAPLE (Warfield, Zou and Wells 2004, IEEE TMI 23(7)): an EM
  estimate of every rater's confusion matrix ``theta[j, said, true]`` and of the true class
  of every pixel, under a global class prior. A rater who is often wrong gets a low
  sensitivity and counts for little. The label of a pixel is the class of highest
  posterior. By default the prior is re-estimated in every M-step (StapleConfig.update_prior;
  Warfield fixes it at the raters' label frequencies, which a mostly-wrong rater skews).

Raters need not label every frame (AnnotateUltrasound saves only the frames a rater drew
on): pass ``annotated`` per rater and a rater's unannotated frames are left out of the
votes, the EM and the agreement of those frames.

Everything is vectorised over *patterns*: the distinct tuples of labels the raters gave a
pixel (at most (K + 1)^R of them, a few hundred for three raters, however many pixels), so
STAPLE costs a bincount over the pixels plus EM on the patterns.

The agreement map is the fraction of the raters who labelled a pixel's frame and gave the
fused class (1.0 = unanimous; 0 where no rater labelled the frame).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lungus.data.labels.schemes import SEG_CLASSES

FUSION_METHODS = ("majority", "staple")
_MAX_DENSE_CODES = 1 << 24  # bincount over codes up to this many; np.unique beyond


@dataclass(frozen=True)
class StapleConfig:
    """EM settings.

    max_iterations; tolerance: stop when the mean log-likelihood per pixel gains less;
    initial_accuracy: initial probability that a rater is right; floor: smallest confusion
    entry (no log(0)); update_prior: re-estimate the class prior in every M-step (as
    Dawid-Skene do) rather than fix it at the raters' label frequencies (Warfield's
    choice), which raters who are mostly wrong inflate towards their random labels, so
    that the EM explains their noise as rare true classes.
    """

    max_iterations: int = 500
    tolerance: float = 1e-7
    initial_accuracy: float = 0.9
    floor: float = 1e-6
    update_prior: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.max_iterations, (int, np.integer)) or self.max_iterations < 1:
            raise ValueError(f"max_iterations must be a whole number >= 1, got {self.max_iterations!r}")
        if not self.tolerance > 0:
            raise ValueError(f"tolerance must be > 0, got {self.tolerance!r}")
        if not 0.0 < self.initial_accuracy < 1.0:
            raise ValueError(f"initial_accuracy must be in (0, 1), got {self.initial_accuracy!r}")
        if not 0.0 < self.floor < 0.01:
            raise ValueError(f"floor must be in (0, 0.01), got {self.floor!r}")


@dataclass
class FusedMasks:
    """The fused masks and how the raters agreed.

    labels: (T, H, W) uint8 fused class ids; agreement: (T, H, W) float32 share of the
    raters (who labelled the frame) that gave the fused class; n_raters: (T,) raters who
    labelled each frame. For STAPLE also: confusion (R, K, K), P(rater says k | true c) as
    [rater, k, c]; sensitivity and specificity (R, K) per rater and class; prior (K,);
    iterations; converged.
    """

    method: str
    labels: np.ndarray
    agreement: np.ndarray
    n_raters: np.ndarray
    confusion: np.ndarray | None = None
    sensitivity: np.ndarray | None = None
    specificity: np.ndarray | None = None
    prior: np.ndarray | None = None
    iterations: int | None = None
    converged: bool | None = None

    @property
    def annotated(self) -> np.ndarray:
        """(T,) frames at least one rater labelled."""
        return self.n_raters > 0


@dataclass
class _Patterns:
    """Distinct label tuples over the raters: labels (M, R) with n_classes for "not labelled",
    how many pixels show each (M,), and each pixel's pattern (T, H, W)."""

    labels: np.ndarray
    counts: np.ndarray
    of_pixel: np.ndarray


def _patterns(masks: list[np.ndarray], valid: np.ndarray, n_classes: int) -> _Patterns:
    base = n_classes + 1
    n_raters = len(masks)
    n_codes = base**n_raters
    codes = np.zeros(masks[0].shape, dtype=np.int32 if n_codes < 2**31 else np.int64)
    for j in reversed(range(n_raters)):
        codes *= base
        said = masks[j]
        if not valid[j].all():  # a rater's unlabelled frames get the extra symbol n_classes
            said = np.where(valid[j][:, None, None], said, n_classes)
        np.add(codes, said, out=codes, casting="unsafe")
    if n_codes <= _MAX_DENSE_CODES:
        counts = np.bincount(codes.ravel(), minlength=n_codes)
        present = np.flatnonzero(counts)
        index = np.full(n_codes, -1, dtype=np.int32)
        index[present] = np.arange(present.size, dtype=np.int32)
        of_pixel = index[codes]
        counts = counts[present]
    else:
        present, inverse, counts = np.unique(codes.ravel(), return_inverse=True, return_counts=True)
        of_pixel = inverse.reshape(codes.shape)
    labels = np.empty((present.size, n_raters), dtype=np.int64)
    rest = present.copy()
    for j in range(n_raters):
        rest, labels[:, j] = np.divmod(rest, base)
    return _Patterns(labels, counts.astype(np.float64), of_pixel)


def _check(
    masks_by_rater: Sequence[np.ndarray], annotated, n_classes: int
) -> tuple[list[np.ndarray], np.ndarray]:
    if len(masks_by_rater) == 0:
        raise ValueError("need the masks of at least one rater")
    masks = [np.asarray(m) for m in masks_by_rater]
    masks = [m[None] if m.ndim == 2 else m for m in masks]
    shape = masks[0].shape
    for j, m in enumerate(masks):
        if m.ndim != 3 or m.shape != shape:
            raise ValueError(f"rater {j}'s masks have shape {m.shape}; every rater needs {shape} (T, H, W)")
        if not np.issubdtype(m.dtype, np.integer):
            raise ValueError(f"rater {j}'s masks must hold integer class ids, got {m.dtype}")
        if m.size and (m.min() < 0 or m.max() >= n_classes):
            raise ValueError(f"rater {j}'s masks hold class ids outside 0..{n_classes - 1}")
    if annotated is None:
        valid = np.ones((len(masks), shape[0]), dtype=bool)
    else:
        valid = np.asarray([np.asarray(a, dtype=bool) for a in annotated])
        if valid.shape != (len(masks), shape[0]):
            raise ValueError(f"annotated must be one (T,) bool array per rater: {len(masks)} x {shape[0]}")
    return masks, valid


def fuse_masks(
    masks_by_rater: Sequence[np.ndarray],
    method: str = "majority",
    *,
    annotated: Sequence[np.ndarray] | None = None,
    n_classes: int = len(SEG_CLASSES),
    config: StapleConfig | None = None,
) -> FusedMasks:
    """Fuse R raters' (T, H, W) class masks by majority vote or STAPLE (see the module docstring).

    annotated: per rater, a (T,) bool array of the frames it labelled (default: all).
    """
    if method not in FUSION_METHODS:
        raise ValueError(f"method must be one of {', '.join(FUSION_METHODS)}, got {method!r}")
    masks, valid = _check(masks_by_rater, annotated, n_classes)
    patterns = _patterns(masks, valid, n_classes)
    said = patterns.labels  # (M, R), n_classes = not labelled
    labelled = said < n_classes
    votes = np.zeros((said.shape[0], n_classes), dtype=np.float64)
    for j in range(said.shape[1]):
        rows = np.flatnonzero(labelled[:, j])
        votes[rows, said[rows, j]] += 1
    n_voters = labelled.sum(axis=1)

    extra: dict[str, object] = {}
    if method == "majority":
        fused = votes.argmax(axis=1)  # the first maximum: ties go to the lower class id
    else:
        posterior, extra = _staple(patterns, n_classes, config or StapleConfig())
        fused = posterior.argmax(axis=1)
    fused = np.where(n_voters > 0, fused, 0)
    agreement = np.where(n_voters > 0, votes[np.arange(fused.size), fused] / np.maximum(n_voters, 1), 0.0)
    return FusedMasks(
        method=method,
        labels=fused.astype(np.uint8)[patterns.of_pixel],
        agreement=agreement.astype(np.float32)[patterns.of_pixel],
        n_raters=valid.sum(axis=0),
        **extra,
    )


def _staple(
    patterns: _Patterns, n_classes: int, config: StapleConfig
) -> tuple[np.ndarray, dict[str, object]]:
    """Multi-class STAPLE EM on the patterns: (M, K) posterior and the rater estimates."""
    said, weight = patterns.labels, patterns.counts
    n_patterns, n_raters = said.shape
    labelled = said < n_classes
    # Initial (or, with update_prior off, fixed) prior: the frequencies of all the raters' labels.
    prior = np.zeros(n_classes)
    for j in range(n_raters):
        rows = labelled[:, j]
        prior += np.bincount(said[rows, j], weights=weight[rows], minlength=n_classes)
    prior = np.maximum(prior / max(prior.sum(), 1.0), config.floor)
    prior /= prior.sum()

    off = (1.0 - config.initial_accuracy) / max(n_classes - 1, 1)
    confusion = np.full((n_raters, n_classes, n_classes), off)
    confusion[:, np.arange(n_classes), np.arange(n_classes)] = config.initial_accuracy
    posterior = np.tile(prior, (n_patterns, 1))
    converged = False
    iterations = 0
    previous = -np.inf
    while iterations < config.max_iterations:
        iterations += 1
        # E-step: P(true class | the labels of the pattern), raters independent given the truth.
        log_post = np.tile(np.log(prior), (n_patterns, 1))
        for j in range(n_raters):
            rows = np.flatnonzero(labelled[:, j])
            log_post[rows] += np.log(confusion[j, said[rows, j], :])
        top = log_post.max(axis=1, keepdims=True)
        posterior = np.exp(log_post - top)
        total = posterior.sum(axis=1, keepdims=True)
        posterior /= total
        log_likelihood = float((weight * (np.log(total[:, 0]) + top[:, 0])).sum()) / max(weight.sum(), 1.0)
        if log_likelihood - previous < config.tolerance:
            converged = True
            break
        previous = log_likelihood
        # M-step: each rater's confusion matrix from the posterior-weighted pixels it labelled.
        mass = posterior * weight[:, None]
        updated = np.empty_like(confusion)
        for j in range(n_raters):
            rows = np.flatnonzero(labelled[:, j])
            table = np.zeros((n_classes, n_classes))
            np.add.at(table, said[rows, j], mass[rows])
            table = np.maximum(table / np.maximum(table.sum(axis=0, keepdims=True), 1e-300), config.floor)
            updated[j] = table / table.sum(axis=0, keepdims=True)
        confusion = updated
        if config.update_prior:
            prior = np.maximum(mass.sum(axis=0) / max(mass.sum(), 1e-300), config.floor)
            prior /= prior.sum()

    # Per rater and class: sensitivity P(says c | c), specificity P(says not c | not c).
    sensitivity = confusion[:, np.arange(n_classes), np.arange(n_classes)].copy()
    specificity = np.empty((n_raters, n_classes))
    mass = posterior * weight[:, None]
    for j in range(n_raters):
        truth_mass = mass[labelled[:, j]].sum(axis=0)  # how much of each true class rater j saw
        for c in range(n_classes):
            others = np.arange(n_classes) != c
            others_mass = truth_mass[others].sum()
            specificity[j, c] = (
                float((truth_mass[others] * (1.0 - confusion[j, c, others])).sum() / others_mass)
                if others_mass > 0
                else np.nan
            )
    return posterior, {
        "confusion": confusion,
        "sensitivity": sensitivity,
        "specificity": specificity,
        "prior": prior,
        "iterations": iterations,
        "converged": converged,
    }
