"""Label sources: scheme, truth and expert columns, the crowd's counts and opinions, their errors."""

from __future__ import annotations

import numpy as np
import pytest

from lungus.data.labels.opinions import Opinions
from lungus.data.manifests.label_sources import available_sources, crowd_opinion_counts, labels_of
from lungus.data.manifests.manifest import Manifest
from lungus.errors import LungUSError

LABELLED = """\
    clip,patient,bline3,crowd_none,crowd_discrete,crowd_confluent,expert_ann,expert_bob,expert_cy,truth_bline3
    clips/a.npy,p1,none,3,1,0,none,none,discrete,none
    clips/b.npy,p1,discrete,1,2,2,discrete,confluent,discrete,discrete
    clips/c.npy,p2,confluent,0,0,0,confluent,confluent,,confluent
    """


def test_available_sources_follow_the_columns_and_the_opinions(write_manifest):
    manifest = Manifest.load(write_manifest(LABELLED))
    assert available_sources(manifest) == [
        "bline3", "truth", "crowd-soft", "crowd-majority", "expert:ann", "expert:bob", "expert:cy", "expert-majority"
    ]
    plain = Manifest.load(write_manifest("clip,patient\nx.npy,p1\n", name="plain/manifest.csv"))
    assert available_sources(plain) == []
    assert available_sources(plain, Opinions.from_rows([("x.npy", "r1", "none")])) == [
        "crowd-soft", "crowd-majority", "crowd-ds"
    ]


def test_plain_truth_and_expert_sources(write_manifest):
    manifest = Manifest.load(write_manifest(LABELLED))
    assert labels_of(manifest, "bline3").hard.tolist() == [0, 1, 2]
    assert labels_of(manifest, "truth").hard.tolist() == [0, 1, 2]
    cy = labels_of(manifest, "expert:cy")
    assert cy.hard.tolist() == [1, 1, -1] and cy.mask.tolist() == [True, True, False]
    np.testing.assert_array_equal(cy.soft, [[0, 1, 0], [0, 1, 0], [0, 0, 0]])
    assert labels_of(manifest, "expert-majority").hard.tolist() == [0, 1, 2]


def test_bline2_is_derived_from_bline3_columns(write_manifest):
    manifest = Manifest.load(write_manifest(LABELLED))
    assert labels_of(manifest, "bline3", "bline2").names() == ["absent", "present", "present"]
    assert labels_of(manifest, "expert:ann", "bline2").hard.tolist() == [0, 1, 1]
    assert labels_of(manifest, "crowd-soft", "bline2").soft[1].tolist() == [0.2, 0.8]


def test_crowd_soft_and_majority(write_manifest):
    manifest = Manifest.load(write_manifest(LABELLED))
    soft = labels_of(manifest, "crowd-soft")
    assert soft.is_soft
    np.testing.assert_allclose(soft.soft, [[0.75, 0.25, 0], [0.2, 0.4, 0.4], [0, 0, 0]])
    assert soft.hard.tolist() == [0, 1, -1]  # clip c has no opinions
    assert labels_of(manifest, "crowd-majority").hard.tolist() == [0, 1, -1]


def test_crowd_ds_reads_opinions_csv_beside_the_manifest(write_manifest, tmp_path):
    manifest = Manifest.load(write_manifest(LABELLED))
    with pytest.raises(LungUSError, match="needs per-rater opinions"):
        labels_of(manifest, "crowd-ds")
    rows = [
        (clip, f"r{j}", label)
        for clip, label in (("clips/a.npy", "none"), ("clips/b.npy", "confluent"))
        for j in range(3)
    ]
    Opinions.from_rows(rows).save(tmp_path / "opinions.csv")
    ds = labels_of(manifest, "crowd-ds")
    assert ds.is_soft and ds.hard.tolist() == [0, 2, -1]
    np.testing.assert_allclose(ds.soft.sum(axis=1), [1, 1, 0])


def test_crowd_counts_come_from_the_opinions_when_the_columns_are_absent(write_manifest):
    manifest = Manifest.load(write_manifest("clip,patient\nx.npy,p1\ny.npy,p2\n"))
    opinions = Opinions.from_rows(
        [("x.npy", "r1", "none"), ("./x.npy", "r2", "none"), ("y.npy", "r1", "confluent")]
    )
    assert crowd_opinion_counts(manifest, opinions).tolist() == [[2, 0, 0], [0, 0, 1]]
    assert labels_of(manifest, "crowd-majority", opinions=opinions).hard.tolist() == [0, 2]


@pytest.mark.parametrize(
    "source, scheme, message",
    [
        ("nonsense", "bline3", "offers: bline3, truth, crowd-soft"),
        ("expert:zed", "bline3", "experts here: ann, bob, cy"),
        ("crowd-soft", "lus4", "cannot give lus4"),
        ("truth", "lus4", "no truth_lus4 column"),
    ],
)
def test_sources_the_manifest_cannot_give_are_clear_errors(write_manifest, source, scheme, message):
    manifest = Manifest.load(write_manifest(LABELLED))
    with pytest.raises(LungUSError, match=message):
        labels_of(manifest, source, scheme)


def test_opinions_with_an_unknown_clip_fail_with_the_line(write_manifest, tmp_path):
    manifest = Manifest.load(write_manifest(LABELLED))
    (tmp_path / "opinions.csv").write_text("clip,rater,label\nclips/a.npy,r1,none\nclips/q.npy,r1,none\n")
    with pytest.raises(LungUSError, match=r"opinions.csv: line 3: clip 'clips/q.npy' is not in the manifest"):
        labels_of(manifest, "crowd-ds")
