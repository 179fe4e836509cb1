"""Fold assignment: patient-disjoint, stratified, deterministic per seed."""

from __future__ import annotations

import numpy as np
import pytest

from lungus.data.manifests.manifest import Manifest
from lungus.data.manifests.split import assign_folds, default_stratify_source, split_manifest
from lungus.data.manifests.validation import validate_manifest
from lungus.errors import LungUSError


def _cohort(n_patients: int = 60, seed: int = 0):
    """Patients with 2-6 clips each; labels depend on the patient (as severity does)."""
    rng = np.random.default_rng(seed)
    patients, labels = [], []
    for p in range(n_patients):
        severity = rng.choice(3, p=[0.5, 0.3, 0.2])
        for _ in range(rng.integers(2, 7)):
            patients.append(f"p{p:03d}")
            labels.append(int(np.clip(severity + rng.integers(-1, 2), 0, 2)))
    return patients, np.array(labels)


def test_folds_are_patient_disjoint():
    patients, labels = _cohort()
    folds = assign_folds(patients, labels, n_folds=5, seed=1)
    folds_of = {}
    for patient, fold in zip(patients, folds):
        folds_of.setdefault(patient, set()).add(int(fold))
    assert all(len(f) == 1 for f in folds_of.values())
    assert set(folds.tolist()) == set(range(5))


def test_folds_are_stratified_by_label():
    patients, labels = _cohort()
    folds = assign_folds(patients, labels, n_folds=5, seed=1)
    overall = np.bincount(labels, minlength=3) / len(labels)
    for fold in range(5):
        share = np.bincount(labels[folds == fold], minlength=3) / (folds == fold).sum()
        assert np.abs(share - overall).max() < 0.08, (fold, share, overall)


def test_same_seed_same_folds_other_seed_differs():
    patients, labels = _cohort()
    first = assign_folds(patients, labels, 4, seed=3)
    np.testing.assert_array_equal(first, assign_folds(patients, labels, 4, seed=3))
    assert not np.array_equal(first, assign_folds(patients, labels, 4, seed=4))


def test_fewer_patients_than_folds_is_refused():
    with pytest.raises(ValueError, match="3 patients cannot fill 5 folds"):
        assign_folds(["a", "b", "c"], None, 5)


def test_split_manifest_overwrites_a_leaky_fold_column(write_manifest):
    text = "clip,patient,bline3,fold\n" + "".join(
        f"c{i}.npy,p{i // 2},{('none', 'discrete', 'confluent')[i % 3]},{i % 2}\n" for i in range(12)
    )
    manifest = Manifest.load(write_manifest(text))
    assert any(
        issue.column == "fold" and "leakage" in issue.message
        for issue in validate_manifest(manifest, check_files=False)
    )
    split = split_manifest(manifest, 3, seed=0)
    assert (split.source, split.scheme) == ("bline3", "bline3")
    assert manifest.column("fold") == [str(f) for f in split.folds]
    assert not [i for i in validate_manifest(manifest, check_files=False) if i.column == "fold"]


def test_split_manifest_refuses_a_structurally_broken_manifest(write_manifest):
    manifest = Manifest.load(write_manifest("clip,patient\na.npy,p1\nb.npy,\nc.npy,p3\n"))
    with pytest.raises(LungUSError, match="cannot split: line 3: error: column patient: blank patient id"):
        split_manifest(manifest, 2)


def test_default_stratify_source_prefers_reference_then_truth_then_crowd(write_manifest):
    def source_of(header: str) -> str | None:
        return default_stratify_source(Manifest.load(write_manifest(header + "\n")))

    assert source_of("clip,patient,bline2,lus4,truth_bline3") == "lus4"
    assert source_of("clip,patient,truth_bline3,crowd_none,crowd_discrete,crowd_confluent") == "truth"
    assert source_of("clip,patient,crowd_none,crowd_discrete,crowd_confluent,expert_a") == "crowd-majority"
    assert source_of("clip,patient,zone") is None
