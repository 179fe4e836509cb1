"""write_clip: every format round trips, writes are atomic, bad requests are refused."""

from __future__ import annotations

import numpy as np
import pytest

from lungus.errors import LungUSError
from lungus.io import WRITE_FORMATS, Clip, read_clip, write_clip

LOSSLESS = [".seq.nrrd", ".nrrd", ".npy", ".npz", ".dcm", ""]
LOSSY = [".mp4", ".m4v", ".mov", ".avi", ".gif"]


@pytest.mark.parametrize("suffix", LOSSLESS + LOSSY)
def test_every_output_format_round_trips(tmp_path, make_fan_frames, suffix):
    frames, _ = make_fan_frames("phased", n_frames=5)
    clip = Clip(frames, fps=20.0, spacing_mm=(0.2, 0.3))
    back = read_clip(write_clip(clip, tmp_path / f"clip{suffix}"), fan=False)
    assert back.frames.shape == frames.shape
    if suffix in LOSSLESS:
        assert np.array_equal(back.frames, frames)
    else:
        assert np.abs(back.frames.astype(int) - frames).mean() < 8.0
    if suffix != ".npy":  # a bare array holds no rate
        assert back.fps == pytest.approx(20.0, rel=1e-3)
    if suffix in (".seq.nrrd", ".nrrd", ".npz", ".dcm", ""):
        assert back.spacing_mm == pytest.approx((0.2, 0.3))


@pytest.mark.parametrize("suffix", [".seq.nrrd", ".dcm", ".mp4", ".npz", ""])
def test_single_frame_clip_round_trips(tmp_path, make_fan_frames, suffix):
    frames, _ = make_fan_frames("convex", n_frames=1)
    back = read_clip(write_clip(Clip(frames, fps=10.0), tmp_path / f"one{suffix}"))
    assert back.n_frames == 1 and back.fan is not None


def test_the_write_formats_table_lists_every_suffix():
    assert set(WRITE_FORMATS) == {
        ".seq.nrrd",
        ".nrrd",
        ".mp4",
        ".m4v",
        ".mov",
        ".avi",
        ".gif",
        ".npy",
        ".npz",
        ".dcm",
        "folder",
    }


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, make_fan_frames):
    frames, _ = make_fan_frames("convex", n_frames=2)
    target = write_clip(Clip(frames, fps=25.0), tmp_path / "clip.seq.nrrd")
    before = target.read_bytes()
    broken = Clip(frames, fps=25.0)
    broken.frames = frames.astype(object)  # pynrrd refuses it after the temporary file exists
    with pytest.raises(Exception):  # noqa: B017 - any failure; what matters is what is left on disk
        write_clip(broken, target)
    assert target.read_bytes() == before
    assert [path.name for path in tmp_path.iterdir()] == ["clip.seq.nrrd"]


def test_compression_that_does_not_fit_the_format_is_refused(tmp_path, make_fan_frames):
    frames, _ = make_fan_frames("convex", n_frames=2)
    with pytest.raises(ValueError, match="compression='gzip' does not apply to .dcm"):
        write_clip(Clip(frames), tmp_path / "clip.dcm", compression="gzip")
    assert not (tmp_path / "clip.dcm").exists()


def test_unsupported_suffix_is_refused(tmp_path, make_fan_frames):
    frames, _ = make_fan_frames("convex", n_frames=2)
    with pytest.raises(LungUSError, match="cannot write '.tiff' clips"):
        write_clip(Clip(frames), tmp_path / "clip.tiff")


def test_quality_must_be_a_percentage(tmp_path, make_fan_frames):
    frames, _ = make_fan_frames("convex", n_frames=2)
    with pytest.raises(ValueError, match="quality"):
        write_clip(Clip(frames), tmp_path / "clip.dcm", compression="jpeg", quality=0)
