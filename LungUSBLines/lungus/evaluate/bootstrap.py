"""Bootstrap over patients: clips of one patient are correlated, so they are resampled together."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from lungus.progress_lines import track


def patient_bootstrap_indices(patients: Sequence[object], n_boot: int, seed: int = 0) -> Iterator[np.ndarray]:
    """Clip-index arrays, one per bootstrap replicate, drawing whole patients with replacement.

    They are drawn as the caller asks for them, under a progress bar (the replicates are most
    of an evaluation's time; see lungus.progress_lines)."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    patient_ids, clip_patient = np.unique(np.asarray([str(p) for p in patients]), return_inverse=True)
    clips_of = [np.flatnonzero(clip_patient == k) for k in range(len(patient_ids))]
    rng = np.random.default_rng(seed)

    def replicates() -> Iterator[np.ndarray]:
        for _ in range(n_boot):
            drawn = rng.integers(0, len(patient_ids), size=len(patient_ids))
            yield np.concatenate([clips_of[k] for k in drawn])

    return track(replicates(), "bootstrap", "replicate", total=n_boot)


def percentile_ci(values: Sequence[float], level: float = 0.95) -> list[float] | None:
    """[low, high] percentile interval of the finite values, or None if there are none."""
    finite = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if finite.size == 0:
        return None
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return [float(low), float(high)]


def bootstrap_ci(
    statistic: Callable[[np.ndarray], float | None],
    replicates: Sequence[np.ndarray],
    level: float = 0.95,
) -> list[float] | None:
    """Percentile CI of ``statistic(indices)`` over bootstrap replicates.

    Replicates where the statistic is undefined (it returns None or NaN, e.g. an AUC on a
    resample holding one class) are skipped rather than counted as zero.
    """
    return percentile_ci([statistic(idx) for idx in replicates], level)
