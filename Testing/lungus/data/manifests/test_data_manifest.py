"""Manifest, the table: loading errors, path resolution, saving (label sources: test_data_label_sources)."""

from __future__ import annotations

import numpy as np
import pytest

from lungus.data.manifests.manifest import Manifest
from lungus.data.manifests.validation import validate_manifest
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
    assert validate_manifest(copy) == []


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
