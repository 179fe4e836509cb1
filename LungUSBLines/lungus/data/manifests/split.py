"""Patient-level, label-stratified fold assignment."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lungus.data.labels.opinions import Opinions
from lungus.data.manifests.label_sources import label_columns, labels_of
from lungus.data.manifests.manifest import EXPERT_PREFIX, SCHEME_COLUMNS, TRUTH_PREFIX, Manifest
from lungus.data.manifests.validation import validate_manifest
from lungus.errors import LungUSError

# Schemes to stratify by, in order of preference: the crowd's scheme, then the finest.
STRATIFY_ORDER = ("bline3", "lus4", "bline2")


def assign_folds(
    patients: Sequence[str], labels: np.ndarray | None, n_folds: int, seed: int = 0
) -> np.ndarray:
    """Fold (0..n_folds-1) per clip: every clip of a patient in one fold, class mix balanced across folds.

    labels: class index per clip (-1 = unlabelled, kept as its own stratum), or None
    to balance clip counts only. Uses scikit-learn's StratifiedGroupKFold with shuffled
    patients, so the result is deterministic per seed and input order.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    patients = np.asarray([str(p) for p in patients])
    n_patients = len(set(patients.tolist()))
    if n_patients < n_folds:
        raise ValueError(f"{n_patients} patients cannot fill {n_folds} folds; use at most {n_patients} folds")
    strata = np.zeros(len(patients), dtype=np.int64) if labels is None else np.asarray(labels, dtype=np.int64)
    if len(strata) != len(patients):
        raise ValueError(f"labels has {len(strata)} entries but patients has {len(patients)}")
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    folds = np.full(len(patients), -1, dtype=np.int64)
    with warnings.catch_warnings():
        # "The least populated class in y has only N members": expected for rare classes.
        warnings.simplefilter("ignore", UserWarning)
        for fold, (_, test_index) in enumerate(
            splitter.split(np.zeros(len(patients)), strata, groups=patients)
        ):
            folds[test_index] = fold
    return folds


def default_stratify_source(manifest: Manifest) -> str | None:
    """What to stratify by when not told: a reference column, else truth, crowd, experts; None if nothing."""
    for name in STRATIFY_ORDER:
        if name in manifest.columns:
            return name
    if any(name.startswith(TRUTH_PREFIX) for name in manifest.columns):
        return "truth"
    if manifest.has_crowd_counts:
        return "crowd-majority"
    experts = [name for name in manifest.columns if name.startswith(EXPERT_PREFIX)]
    if len(experts) >= 2:
        return "expert-majority"
    if experts:
        return f"expert:{experts[0][len(EXPERT_PREFIX) :]}"
    return None


def default_scheme(manifest: Manifest, source: str) -> str:
    """The scheme a source is read in when not told: its own column's, else bline3."""
    if source in SCHEME_COLUMNS:
        return source
    if source == "truth":
        for name in STRATIFY_ORDER:
            if TRUTH_PREFIX + name in manifest.columns:
                return name
    if source.startswith("expert:"):
        scheme = label_columns(manifest).get(EXPERT_PREFIX + source[len("expert:") :])
        if scheme:
            return scheme
    return "bline3"


@dataclass
class SplitResult:
    folds: np.ndarray
    source: str | None  # label source stratified by (None: not stratified)
    scheme: str | None
    labels: np.ndarray | None  # the class index per clip that was stratified by (-1 unlabelled)


def split_manifest(
    manifest: Manifest,
    n_folds: int,
    seed: int = 0,
    source: str | None = None,
    scheme: str | None = None,
    opinions: str | os.PathLike | Opinions | None = None,
) -> SplitResult:
    """Assign folds to a manifest's rows (sets its ``fold`` column; the caller saves it)."""
    manifest.require_columns("clip", "patient")
    structural = [
        issue
        for issue in validate_manifest(manifest, check_files=False)
        if issue.severity == "error" and issue.column != "fold"
    ]
    if structural:
        first = structural[0]
        more = f" (and {len(structural) - 1} more; run `lungus validate`)" if len(structural) > 1 else ""
        raise LungUSError(f"cannot split: {first.format().lstrip()}{more}", manifest.path)
    source = source or default_stratify_source(manifest)
    labels = None
    if source is not None:
        scheme = scheme or default_scheme(manifest, source)
        labels = labels_of(manifest, source, scheme, opinions).hard
    folds = manifest_folds(manifest, labels, n_folds, seed)
    manifest.set_column("fold", [None if f < 0 else int(f) for f in folds])
    return SplitResult(folds, source, scheme if source else None, labels)


def manifest_folds(manifest: Manifest, labels: np.ndarray | None, n_folds: int, seed: int = 0) -> np.ndarray:
    """Fold per row (:func:`assign_folds` over the rows that can be scored); -1 for the train-only
    rows, which train in every fold. LungUSError when there are too few patients."""
    scored = manifest.scored_rows()
    patients = manifest.patients
    folds = np.full(len(manifest), -1, dtype=np.int64)
    try:
        folds[scored] = assign_folds([patients[r] for r in scored], None if labels is None else labels[scored],
                                     n_folds, seed)
    except ValueError as error:
        raise LungUSError(str(error), manifest.path) from None
    return folds
