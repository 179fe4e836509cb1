"""Manifest: loading errors, path resolution, saving, and every label source."""

from __future__ import annotations

import numpy as np
import pytest

from lungus.data.label_sources import crowd_opinion_counts, labels_of
from lungus.data.manifest import Manifest
from lungus.data.opinions import Opinions
from lungus.errors import LungUSError

LABELLED = """\
    clip,patient,bline3,crowd_none,crowd_discrete,crowd_confluent,expert_ann,expert_bob,expert_cy,truth_bline3
    clips/a.npy,p1,none,3,1,0,none,none,discrete,none
    clips/b.npy,p1,discrete,1,2,2,discrete,confluent,discrete,discrete
    clips/c.npy,p2,confluent,0,0,0,confluent,confluent,,confluent
    """


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda p: None, "manifest not found"),
        (lambda p: p.mkdir(), "is a folder"),
        (lambda p: p.write_text(""), "empty manifest"),
        (lambda p: p.write_bytes(b"clip,patient\n\xff\xfe,\x00\n"), "not a UTF-8"),
        (lambda p: p.write_text("clip,patient,clip\na,b,c\n"), "'clip' appears more than once"),
    ],
)
def test_unreadable_manifest_is_one_line_error_naming_the_file(tmp_path, setup, message):
    path = tmp_path / "manifest.csv"
    setup(path)
    with pytest.raises(LungUSError) as caught:
        Manifest.load(path)
    text = str(caught.value)
    assert text.startswith(str(path)) and message in text and "\n" not in text


def test_clip_paths_resolve_against_the_manifest_folder_not_the_cwd(write_manifest, tmp_path, monkeypatch):
    path = write_manifest("clip,patient\nclips/a.npy,p1\n../outside/b.npy,p2\n", name="sets/one/manifest.csv")
    monkeypatch.chdir(tmp_path)
    manifest = Manifest.load(path)
    assert manifest.clip_path(0) == (tmp_path / "sets/one/clips/a.npy").resolve()
    assert manifest.clip_path(1) == (tmp_path / "sets/outside/b.npy").resolve()


def test_save_into_another_folder_rewrites_clip_paths_to_the_same_files(write_manifest, tmp_path):
    path = write_manifest("clip,patient\nclips/a.npy,p1\n", clips=["clips/a.npy"])
    manifest = Manifest.load(path)
    manifest.save(tmp_path / "elsewhere/copy.csv")
    copy = Manifest.load(tmp_path / "elsewhere/copy.csv")
    assert copy.rows[0]["clip"] == "../clips/a.npy"
    assert copy.clip_path(0).is_file()
    assert copy.validate() == []


def test_save_round_trips_and_leaves_no_temporary_files(write_manifest, tmp_path):
    path = write_manifest(LABELLED)
    manifest = Manifest.load(path)
    manifest.set_column("fold", [0, 0, 1])
    manifest.save()
    again = Manifest.load(path)
    assert again.columns == manifest.columns and again.rows == manifest.rows
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.csv"]


def test_from_rows_puts_standard_columns_in_contract_order(tmp_path):
    rows = [
        {"fold": 1, "note": "x", "truth_bline3": "none", "expert_b": "none", "patient": "p", "clip": "c.npy"}
    ]
    manifest = Manifest.from_rows(tmp_path / "m.csv", rows)
    assert manifest.columns == ["clip", "patient", "expert_b", "truth_bline3", "note", "fold"]


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


# ---- paths that leave the manifest's folder (docs/manifest-paths.md) ---------------------------------


def _escape(kind: str, shared, outside) -> tuple[str, str]:
    """(column, path text) of a row that reaches outside/a.npy from a manifest in ``shared``."""
    if kind == "parent":
        return "clip", "../outside/a.npy"
    if kind == "absolute":
        return "clip", str(outside / "a.npy")
    if kind == "file symlink":
        (shared / "clips" / "link.npy").symlink_to(outside / "a.npy")
        return "clip", "clips/link.npy"
    if kind == "folder symlink":
        (shared / "linked").symlink_to(outside, target_is_directory=True)
        return "clip", "linked/a.npy"
    return "mask", "../outside/a.npy"  # the other path column


@pytest.fixture(params=["parent", "absolute", "file symlink", "folder symlink", "mask column"])
def escaping_manifest(request, write_manifest, tmp_path):
    """shared/manifest.csv: line 2 stays inside its folder, line 3 reaches tmp_path/outside/a.npy."""
    outside = tmp_path / "outside"
    outside.mkdir()
    np.save(outside / "a.npy", np.zeros((2, 8, 8), dtype=np.uint8))
    path = write_manifest(
        "clip,patient,mask\nclips/in.npy,p1,\n", clips=["clips/in.npy"], name="shared/manifest.csv"
    )
    column, text = _escape(request.param, path.parent, outside)
    clip = text if column == "clip" else "clips/in.npy"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"{clip},p2,{text if column == 'mask' else ''}\n")
    return path, column, text, outside / "a.npy"


def test_paths_leaving_the_manifest_folder_are_allowed_by_default(escaping_manifest):
    path, column, _, target = escaping_manifest
    manifest = Manifest.load(path)
    assert manifest.resolve(1, column).resolve() == target.resolve()


def test_confine_paths_refuses_each_kind_of_escape_naming_the_line(escaping_manifest):
    path, column, text, _ = escaping_manifest
    with pytest.raises(LungUSError) as caught:
        Manifest.load(path, confine_paths=True)
    message = str(caught.value)
    assert message.startswith(
        f"{path}: line 3: column {column}: {text!r} leads outside the manifest's folder"
    )
    assert "\n" not in message


def test_confine_paths_accepts_paths_that_stay_inside(write_manifest):
    path = write_manifest(
        "clip,patient\nclips/a.npy,p1\nclips/../clips/b.npy,p2\n", clips=["clips/a.npy", "clips/b.npy"]
    )
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"{path.parent.resolve() / 'clips' / 'a.npy'},p3\n")  # absolute, but inside
    assert len(Manifest.load(path, confine_paths=True)) == 3
