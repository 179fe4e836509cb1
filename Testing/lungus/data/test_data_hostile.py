"""Hostile and careless manifests and AnnotateUltrasound JSON (issue 16): one LungUSError line
naming the file and the problem, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import lungus
from lungus.data.labels.annotations import read_annotation
from lungus.data.manifests.label_sources import crowd_counts
from lungus.data.manifests.manifest import Manifest
from lungus.errors import LungUSError

ENGINE = Path(lungus.__file__).resolve().parents[1]  # the engine under test, for the CLI run


def run_cli(*args: str) -> subprocess.CompletedProcess:
    environment = dict(os.environ, PYTHONPATH=os.fspath(ENGINE))
    return subprocess.run(
        [sys.executable, "-m", "lungus", *args], capture_output=True, text=True, timeout=60, env=environment
    )


def write_manifest(path: Path, rows: list[str]) -> Path:
    header = "clip,patient,crowd_none,crowd_discrete,crowd_confluent"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_a_manifest_path_longer_than_file_systems_allow_is_refused(tmp_path):
    manifest = Manifest.load(write_manifest(tmp_path / "m.csv", ["a" * 5000 + ".mp4,p1,1,0,0"]))
    with pytest.raises(LungUSError, match="line 2: column clip: a path of 5004 characters"):
        manifest.clip_path(0)


def test_cli_validate_on_a_5000_character_path_is_one_line_and_exit_2(tmp_path):
    path = write_manifest(tmp_path / "m.csv", ["a" * 5000 + ".mp4,p1,1,0,0"])
    result = run_cli("validate", os.fspath(path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "longer than file systems allow" in result.stderr


def test_a_crowd_count_of_ten_to_the_twenty_is_refused(tmp_path):
    manifest = Manifest.load(write_manifest(tmp_path / "m.csv", ["a.mp4,p1,100000000000000000000,0,0"]))
    with pytest.raises(
        LungUSError, match="line 2: column crowd_none: '100000000000000000000' is not an integer count"
    ):
        crowd_counts(manifest)


def annotation(path: Path, record: object) -> Path:
    path.write_text(json.dumps(record), encoding="utf-8")
    return path


def one_line(frame_number: object = 0, points: object = ((0, 0, 0), (5, 5, 0))) -> dict:
    return {
        "frame_annotations": [
            {
                "frame_number": frame_number,
                "coordinate_space": "LPS",
                "pleura_lines": [{"rater": "ann", "line": {"points": [list(point) for point in points]}}],
                "b_lines": [],
            }
        ]
    }


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({**one_line(), "labels": 5}, "labels must be a list"),
        (one_line(frame_number=10**400), "frame_number must be a whole number"),
        (one_line(points=((10**400, 0, 0), (5, 5, 0))), "line points must be lists of 3 numbers"),
    ],
    ids=["labels-number", "frame-past-float", "point-past-float"],
)
def test_annotation_json_values_out_of_range_are_refused(tmp_path, record, message):
    with pytest.raises(LungUSError, match=message):
        read_annotation(annotation(tmp_path / "clip.ann.json", record))


def test_annotation_json_nested_too_deep_is_refused(tmp_path):
    path = tmp_path / "clip.ann.json"
    path.write_text('{"frame_annotations": ' + "[" * 100_000 + "]" * 100_000 + "}", encoding="utf-8")
    with pytest.raises(LungUSError, match="not a readable JSON file"):
        read_annotation(path)


def test_annotation_image_size_of_infinity_is_ignored_not_a_crash(tmp_path):
    record = {**one_line(), "image_size_rows": 1e400, "image_size_cols": 256}  # json writes Infinity
    assert read_annotation(annotation(tmp_path / "clip.ann.json", record)).image_size is None


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_manifest_that_is_a_fifo_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "manifest.csv")
    result = run_cli("validate", os.fspath(tmp_path / "manifest.csv"))  # reading a FIFO blocks
    assert result.returncode == 2 and "not a regular file" in result.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_an_annotation_file_that_is_a_fifo_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "clip.ann.json")
    code = "import sys; from lungus.data.labels.annotations import read_annotation; read_annotation(sys.argv[1])"
    environment = dict(os.environ, PYTHONPATH=os.fspath(ENGINE))
    result = subprocess.run(  # in a child process: reading a FIFO blocks
        [sys.executable, "-c", code, os.fspath(tmp_path / "clip.ann.json")],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
    )
    assert "LungUSError" in result.stderr and "not a regular file" in result.stderr
