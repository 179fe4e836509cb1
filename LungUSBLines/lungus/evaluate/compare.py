"""Paired comparison of two models on the same clips (crowd-trained vs expert-trained)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lungus.evaluate.bootstrap import patient_bootstrap_indices, percentile_ci
from lungus.evaluate.metrics import auc


def paired_auc_comparison(
    y_true: Sequence[int],
    probabilities_a: np.ndarray,
    probabilities_b: np.ndarray,
    patients: Sequence[object],
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, object]:
    """AUC(A) - AUC(B) with a paired patient-bootstrap CI and a two-sided p-value.

    Both models are scored on the same resampled patients in each replicate, so the
    correlation between their errors is kept. The p-value is twice the smaller share of
    replicates on either side of zero (at least 1 / n_boot): the percentile-bootstrap test
    of "no difference".
    """
    y_true = np.asarray(y_true, dtype=int)
    probabilities_a = np.asarray(probabilities_a, dtype=float)
    probabilities_b = np.asarray(probabilities_b, dtype=float)
    if probabilities_a.shape != probabilities_b.shape or probabilities_a.shape[0] != y_true.shape[0]:
        raise ValueError(
            f"both models need (N, K) probabilities for the same N={y_true.shape[0]} clips; "
            f"got {probabilities_a.shape} and {probabilities_b.shape}"
        )
    auc_a, auc_b = auc(y_true, probabilities_a), auc(y_true, probabilities_b)
    if auc_a is None or auc_b is None:
        raise ValueError("AUC is undefined: the clips hold only one class")
    differences = []
    for index in patient_bootstrap_indices(patients, n_boot, seed):
        a, b = auc(y_true[index], probabilities_a[index]), auc(y_true[index], probabilities_b[index])
        if a is not None and b is not None:
            differences.append(a - b)
    diffs = np.asarray(differences)
    p_value = 2.0 * min((diffs <= 0).mean(), (diffs >= 0).mean()) if diffs.size else float("nan")
    return {
        "auc_a": auc_a,
        "auc_b": auc_b,
        "auc_diff": auc_a - auc_b,
        "auc_diff_ci": percentile_ci(diffs),
        "p_value": float(min(1.0, max(p_value, 1.0 / max(diffs.size, 1)))),
        "n_boot_valid": int(diffs.size),
        "n_clips": int(y_true.size),
        "n_patients": len(set(map(str, patients))),
        "method": "paired patient bootstrap",
    }
