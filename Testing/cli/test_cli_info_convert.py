"""`lungus info` and `lungus convert`, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from lungus.cli import main
from lungus.io import read_clip

SUMMARY_KEYS = {"path", "n_frames", "height", "width", "fps", "spacing_mm", "duration_s", "fan"}


def test_info_json_describes_each_clip(mp4_clip, dicom_clip, capsys):
    assert main(["info", str(mp4_clip), str(dicom_clip), "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [set(record) for record in records] == [SUMMARY_KEYS, SUMMARY_KEYS]
    video, dicom = records
    assert video["path"] == str(mp4_clip) and video["n_frames"] == 6
    assert (video["height"], video["width"], video["fps"]) == (180, 240, 25.0)
    assert video["duration_s"] == pytest.approx(0.24) and video["spacing_mm"] is None
    assert video["fan"]["kind"] == "sector" and len(video["fan"]["bbox"]) == 4
    assert dicom["spacing_mm"] == pytest.approx([0.25, 0.30]) and dicom["fps"] == pytest.approx(20.0)


def test_info_text_names_frames_size_spacing_and_fan(dicom_clip, capsys):
    assert main(["info", str(dicom_clip)]) == 0
    out = capsys.readouterr().out
    assert "6 at 20 fps (0.30 s)" in out
    assert "180 x 240 pixels" in out
    assert "0.25 x 0.3 mm" in out
    assert "fan       sector (detected)" in out and "apex (" in out


def test_info_goes_on_past_a_bad_clip_and_exits_2(mp4_clip, tmp_path, capsys):
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"\x00" * 128 + b"DICM" + b"\x02\x00garbage")
    assert main(["info", str(bad), str(mp4_clip), "--json"]) == 2
    captured = capsys.readouterr()
    assert [record["path"] for record in json.loads(captured.out)] == [str(mp4_clip)]
    error_lines = captured.err.strip().splitlines()
    assert len(error_lines) == 1 and error_lines[0].startswith(f"lungus info: error: {bad}: ")


def test_info_on_a_folder_lists_the_clips_in_it(tmp_path, mp4_clip, dicom_clip, capsys):
    assert main(["info", str(tmp_path), "--json", "--no-fan"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert sorted(record["path"] for record in records) == sorted([str(dicom_clip), str(mp4_clip)])
    assert all(record["fan"] is None for record in records)


def test_convert_with_crop_fan_removes_text(mp4_clip, tmp_path, capsys):
    out = tmp_path / "masked.seq.nrrd"
    assert main(["convert", str(mp4_clip), str(out), "--crop-fan"]) == 0
    assert "wrote" in capsys.readouterr().out
    original = read_clip(mp4_clip)
    converted = read_clip(out, fan=False)
    assert converted.n_frames == original.n_frames and converted.fps == pytest.approx(25.0)
    row0, col0, row1, col1 = original.fan.bbox
    assert converted.frames.shape[1:] == (row1 - row0, col1 - col0)
    outside = ~original.fan.mask[row0:row1, col0:col1]
    assert converted.frames[:, outside].max() == 0
    # The burned-in "ID" text sat in the top-left corner, outside the fan's box or its mask.
    assert original.frames[:, :14, :60].max() > 200


def test_crop_fan_removes_a_simulated_linear_clips_text_column(tmp_path, write_test_video, capsys):
    """The issue's case: a simulated linear clip as mp4 with no fan JSON beside it; the
    "L12-4 / LUNG / D / G / Hz / patient" column ends just short of the wide fan, and the
    crop used to keep nearly all of it."""
    from lungus.sim.generator import SimulationConfig, simulate_clip

    def simulated(annotations: bool):
        config = SimulationConfig(n_frames=24, height=256, width=256, annotations=annotations)
        return simulate_clip(config, seed=0, probe="linear")

    annotated = simulated(True)
    text = (annotated.clip.frames != simulated(False).clip.frames).any(axis=0)
    text[:, 128:] = False  # the text column (the depth ticks sit on the right)
    assert text.sum() > 500
    source = write_test_video(tmp_path / "linear.mp4", annotated.clip.frames)
    out = tmp_path / "linear.npy"
    assert main(["convert", str(source), str(out), "--crop-fan"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((tmp_path / "linear.npy.deid.json").read_text())
    row0, col0, row1, col1 = report["fan"]["bbox"]
    after = np.zeros(annotated.clip.frames.shape, np.uint8)
    after[:, row0:row1, col0:col1] = np.load(out)
    assert after[:, text].max() == 0
    fan = annotated.clip.fan.mask
    assert (after[:, fan] > 0).any(axis=0).mean() >= 0.95  # the fan's image is kept
    assert report["input"] == "linear.mp4" and report["static_check"] == "done"
    assert report["content_outside_fan"] > 0
    assert f"de-identified: blanked {report['pixels_outside_fan']} pixel(s) outside the linear fan" in printed


def test_convert_without_crop_fan_writes_no_report(mp4_clip, tmp_path, capsys):
    assert main(["convert", str(mp4_clip), str(tmp_path / "plain.npy")]) == 0
    assert "de-identified" not in capsys.readouterr().out
    assert not (tmp_path / "plain.npy.deid.json").exists()


@pytest.mark.parametrize("suffix", [".dcm", ".npz", "", ".avi"])
def test_convert_between_formats(dicom_clip, tmp_path, suffix):
    out = tmp_path / f"converted{suffix}"
    assert main(["convert", str(dicom_clip), str(out)]) == 0
    back = read_clip(out, fan=False)
    source = read_clip(dicom_clip, fan=False)
    assert back.n_frames == source.n_frames and back.fps == pytest.approx(source.fps, rel=1e-3)
    assert np.abs(back.frames.astype(int) - source.frames).mean() < 8.0


def test_convert_to_jpeg_dicom(mp4_clip, tmp_path):
    out = tmp_path / "jpeg.dcm"
    assert main(["convert", str(mp4_clip), str(out), "--compression", "jpeg", "--quality", "90"]) == 0
    assert "JPEG Baseline" in read_clip(out, fan=False).meta["transfer_syntax"]


def test_convert_rejects_compression_that_does_not_fit(mp4_clip, tmp_path, capsys):
    assert main(["convert", str(mp4_clip), str(tmp_path / "out.mp4"), "--compression", "gzip"]) == 2
    assert "does not apply to .mp4" in capsys.readouterr().err
    assert not (tmp_path / "out.mp4").exists()


def _lungus(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lungus", *args], capture_output=True, text=True, timeout=120
    )


def test_bad_input_exits_2_with_one_line_and_no_traceback(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("this is not a clip\n")
    result = _lungus("info", str(notes), str(tmp_path / "missing.mp4"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"lungus info: error: {notes}: not a clip: neither its content nor its suffix is a supported format "
        "(video, GIF, DICOM, NRRD, .npy/.npz, image, or a folder of frames)",
        f"lungus info: error: {tmp_path / 'missing.mp4'}: no such file or folder",
    ]


def test_convert_of_truncated_file_exits_2_without_traceback(mp4_clip, tmp_path):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(mp4_clip.read_bytes()[:3000])
    result = _lungus("convert", str(cut), str(tmp_path / "out.seq.nrrd"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "truncated" in result.stderr
    assert not (tmp_path / "out.seq.nrrd").exists()


@pytest.mark.parametrize("command", [["info"], ["convert"]])
def test_a_voxel_limit_below_one_is_a_one_line_error(mp4_clip, tmp_path, capsys, command):
    extra = [str(tmp_path / "out.seq.nrrd")] if command == ["convert"] else []
    assert main([*command, str(mp4_clip), *extra, "--max-voxels", "0"]) == 2
    error = capsys.readouterr().err.strip()
    assert "--max-voxels must be a positive number, got 0" in error and "\n" not in error


def test_a_clip_over_the_voxel_limit_is_refused_by_name(mp4_clip, capsys):
    assert main(["info", str(mp4_clip), "--max-voxels", "1000"]) == 2
    error = capsys.readouterr().err
    assert str(mp4_clip.name) in error and "Traceback" not in error


def test_info_prints_a_name_with_non_utf8_bytes_escaped_on_a_strict_utf8_stdout(tmp_path):
    name = os.fsdecode(b"scan\xff.npy")
    np.save(tmp_path / name, np.full((2, 8, 8), 100, dtype=np.uint8))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "PYTHONIOENCODING": "utf-8"}
    done = subprocess.run([sys.executable, "-m", "lungus", "info", str(tmp_path / name)], capture_output=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert done.stdout.decode("utf-8").splitlines()[0] == repr(str(tmp_path / name))
