"""End to end: `lungus simulate` writes a 12-clip set that reads back in every --format."""

from __future__ import annotations

import csv
import importlib.util
import json

import numpy as np
import pytest

from lungus.cli import main
from lungus.io import read_clip
from lungus.sim.dataset import read_masks

SMALL = ["--frames", "3", "--size", "64x80", "--quiet"]


def _manifest_rows(folder):
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize(
    "clip_format, suffix", [("mp4", ".mp4"), ("seq.nrrd", ".seq.nrrd"), ("dicom", ".dcm")]
)
def test_a_12_clip_set_reads_back_through_lungus_io(tmp_path, capsys, clip_format, suffix):
    out = tmp_path / "set"
    argv = [
        "simulate",
        "--out",
        str(out),
        "--clips",
        "12",
        "--patients",
        "4",
        "--seed",
        "2",
        "--format",
        clip_format,
    ]
    assert main(argv + SMALL) == 0
    assert "12 clip(s) of 4 patient(s)" in capsys.readouterr().out
    rows = _manifest_rows(out)
    assert len(rows) == 12 and len({r["patient"] for r in rows}) == 4
    for row in rows:
        assert row["clip"].endswith(suffix)
        clip = read_clip(out / row["clip"])
        assert clip.frames.shape == (3, 64, 80)
        assert clip.fan is not None and clip.fan.kind in ("sector", "linear")
        assert read_masks(out / row["mask"]).shape == (3, 64, 80)


@pytest.mark.skipif(
    importlib.util.find_spec("lungus.commands.info") is None, reason="`lungus info` not built yet"
)
@pytest.mark.parametrize("clip_format", ["mp4", "seq.nrrd", "dicom"])
def test_a_12_clip_set_reads_back_through_lungus_info(tmp_path, capsys, clip_format):
    out = tmp_path / "set"
    argv = ["simulate", "--out", str(out), "--clips", "12", "--patients", "3", "--format", clip_format]
    assert main(argv + SMALL) == 0
    capsys.readouterr()
    clips = [str(out / row["clip"]) for row in _manifest_rows(out)]
    assert main(["info", "--json", *clips]) == 0
    text = capsys.readouterr().out.strip()
    records = json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines()]
    assert len(records) == 12
    assert all(r["n_frames"] == 3 and r["height"] == 64 and r["width"] == 80 for r in records)


def test_the_same_seed_gives_the_same_set(tmp_path):
    for name in ("a", "b"):
        argv = ["simulate", "--out", str(tmp_path / name), "--clips", "3", "--patients", "2", "--seed", "7"]
        assert main(argv + SMALL + ["--format", "seq.nrrd"]) == 0
    assert (tmp_path / "a" / "manifest.csv").read_text() == (tmp_path / "b" / "manifest.csv").read_text()
    first = _manifest_rows(tmp_path / "a")[0]["clip"]
    assert np.array_equal(read_clip(tmp_path / "a" / first).frames, read_clip(tmp_path / "b" / first).frames)


def test_preview_writes_a_contact_sheet(tmp_path, capsys):
    argv = ["simulate", "--out", str(tmp_path), "--clips", "2", "--patients", "1", "--preview"]
    assert main(argv + SMALL) == 0
    assert (tmp_path / "preview.png").stat().st_size > 1000
    assert "preview" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--clips", "2", "--patients", "3"], "--patients"),
        (["--clips", "0", "--patients", "1"], "--clips"),
        (["--clips", "2", "--patients", "1", "--frames", "0"], "n_frames"),
    ],
)
def test_bad_options_exit_2_with_one_line(tmp_path, capsys, extra, message):
    assert main(["simulate", "--out", str(tmp_path / "x"), "--quiet", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_an_existing_set_needs_overwrite(tmp_path, capsys):
    argv = ["simulate", "--out", str(tmp_path), "--clips", "1", "--patients", "1"] + SMALL
    assert main(argv) == 0
    assert main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(argv + ["--overwrite"]) == 0


def test_progress_into_a_file_is_lines_not_carriage_returns(tmp_path, capfd, monkeypatch):
    import lungus.progress_lines

    monkeypatch.setattr(lungus.progress_lines, "BAR_DELAY_S", 0.0)
    assert main(["simulate", "--out", str(tmp_path / "sim"), "--clips", "4", "--patients", "2", "--frames", "3",
                 "--size", "64x80"]) == 0
    err = capfd.readouterr().err  # stderr is a file here, not a terminal
    assert "\r" not in err
    assert [line.split(" (")[0] for line in err.splitlines()] == [f"simulate: {k}/4 clip" for k in (1, 2, 3, 4)]
