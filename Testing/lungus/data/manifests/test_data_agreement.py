"""lungus.data.manifests.agreement: comparisons, strict majority, the Duggan-style report."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from lungus.data.manifests.agreement import compare, labels_report, strict_majority
from lungus.data.manifests.manifest import Manifest
from lungus.errors import LungUSError


def test_compare_counts_only_clips_both_label_and_matches_sklearn():
    reference = np.array([0, 0, 1, 2, 2, -1, 1])
    source = np.array([0, 1, 1, 2, 1, 2, -1])
    result = compare(reference, source, 3)
    assert result["n"] == 5
    assert result["accuracy"] == pytest.approx(3 / 5)
    assert result["kappa"] == pytest.approx(cohen_kappa_score(reference[:5], source[:5]))
    assert result["confusion"] == [[1, 1, 0], [0, 1, 0], [0, 1, 1]]  # rows = reference


def test_strict_majority_leaves_ties_out():
    votes = [np.array([0, 1, 2, -1]), np.array([0, 2, 2, -1]), np.array([1, -1, 0, -1])]
    assert strict_majority(votes, 3).tolist() == [0, -1, 2, -1]


def test_experts_are_judged_against_the_other_experts_only(write_manifest):
    # ann and bob agree everywhere; cy always says confluent.
    rows = [
        ("none", "none", "confluent"),
        ("discrete", "discrete", "confluent"),
        ("none", "none", "confluent"),
    ]
    text = "clip,patient,expert_ann,expert_bob,expert_cy\n" + "".join(
        f"c{i}.npy,p{i},{a},{b},{c}\n" for i, (a, b, c) in enumerate(rows)
    )
    report = labels_report(Manifest.load(write_manifest(text)))
    others = report["concordance"]["expert_vs_others"]
    assert others["cy"]["accuracy"] == 0.0 and others["cy"]["n"] == 3
    # ann's others are bob and cy, who never agree: no strict majority, nothing to compare.
    assert others["ann"]["n"] == 0 and others["ann"]["accuracy"] is None


def test_report_keys_with_crowd_experts_and_truth(write_manifest, tmp_path):
    text = "clip,patient,crowd_none,crowd_discrete,crowd_confluent,expert_a,expert_b,truth_bline3\n"
    text += "c0.npy,p0,3,0,0,none,none,none\nc1.npy,p1,0,1,3,confluent,discrete,confluent\n"
    text += "c2.npy,p2,1,3,0,discrete,discrete,discrete\n"
    path = write_manifest(text)
    (tmp_path / "opinions.csv").write_text(
        "clip,rater,label\n"
        + "".join(
            f"c{i}.npy,r{j},{lab}\n"
            for i, lab in enumerate(["none", "confluent", "discrete"])
            for j in range(3)
        )
    )
    report = labels_report(Manifest.load(path))
    assert {
        "vs_truth",
        "vs_experts",
        "concordance",
        "expert_pairs",
        "dawid_skene",
        "crowd",
        "sources",
    } <= set(report)
    assert set(report["vs_truth"]) == {
        "crowd-majority",
        "crowd-ds",
        "expert:a",
        "expert:b",
        "expert-majority",
        "crowd-soft",
    }
    assert report["vs_truth"]["crowd-majority"]["accuracy"] == 1.0
    assert report["crowd"]["n_raters"] == 3 and len(report["dawid_skene"]["raters"]) == 3
    assert report["expert_pairs"][0]["experts"] == ["a", "b"]


def test_nothing_to_compare_is_an_error(write_manifest):
    manifest = Manifest.load(write_manifest("clip,patient,expert_a\nc.npy,p,none\n"))
    with pytest.raises(LungUSError, match="nothing to compare in bline3"):
        labels_report(manifest)


def test_the_manifests_own_reference_column_is_a_source(write_manifest):
    text = "clip,patient,bline3,truth_bline3\nc0.npy,p0,none,none\nc1.npy,p1,discrete,confluent\n"
    report = labels_report(Manifest.load(write_manifest(text)), scheme="bline2")
    assert report["vs_truth"]["bline3"]["accuracy"] == 1.0  # discrete and confluent are both 'present'
