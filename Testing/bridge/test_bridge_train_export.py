"""LungUSTrainLib: sequences in the scene exported as clip files the engine reads back."""

from __future__ import annotations

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")

from lungus.errors import LungUSError  # noqa: E402
from lungus.io import read_clip  # noqa: E402
from LungUSBLinesLib import sequences  # noqa: E402
from LungUSTrainLib import sequence_export as export  # noqa: E402


@pytest.mark.parametrize("suffix", [s for s in export.EXPORT_FORMATS if s != ".mp4"])
def test_exported_clip_reads_back_unchanged(headless, small_clip, tmp_path, suffix):
    sequence = sequences.clip_to_sequence(headless.scene, small_clip).sequence
    [result] = export.export_sequences([sequence], tmp_path, suffix)
    clip = read_clip(result.path, fan=False)
    np.testing.assert_array_equal(clip.frames, small_clip.frames)
    assert clip.fps == pytest.approx(25.0)


def test_exported_video_keeps_frame_count_and_rate(headless, small_frames, tmp_path):
    frames = np.repeat(np.repeat(small_frames, 4, axis=1), 4, axis=2)  # codecs want more than 8 pixels
    sequence = sequences.frames_to_sequence(headless.scene, frames, "video", fps=10.0)
    [result] = export.export_sequences([sequence], tmp_path, ".mp4")
    clip = read_clip(result.path, fan=False)
    assert clip.n_frames == 4 and clip.fps == pytest.approx(10.0)


def test_files_are_named_after_their_sequences(headless, small_frames, tmp_path):
    names = ["patient 1/zone.2", "patient 1/zone.2", "b"]
    made = [sequences.frames_to_sequence(headless.scene, small_frames, name, fps=5.0) for name in names]
    results = export.export_sequences(made, tmp_path, ".npz")
    assert [r.path.name for r in results] == ["patient 1_zone_2.npz", "patient 1_zone_2-2.npz", "b.npz"]


def test_existing_files_are_not_overwritten(headless, small_frames, tmp_path):
    (tmp_path / "clip.npz").write_bytes(b"keep me")
    sequence = sequences.frames_to_sequence(headless.scene, small_frames, "clip", fps=5.0)
    [result] = export.export_sequences([sequence], tmp_path, ".npz")
    assert result.path.name == "clip-2.npz" and (tmp_path / "clip.npz").read_bytes() == b"keep me"


def test_a_bad_sequence_is_recorded_and_the_rest_exported(headless, small_frames, tmp_path):
    volume = slicer.vtkMRMLScalarVolumeNode()
    slicer.util.updateVolumeFromArray(volume, np.zeros((3, 4, 5), np.uint8))
    ct = headless.scene.AddNewNodeByClass("vtkMRMLSequenceNode", "ct")
    ct.SetDataNodeAtValue(volume, "0")
    good = sequences.frames_to_sequence(headless.scene, small_frames, "good", fps=5.0)
    bad_result, good_result = export.export_sequences([ct, good], tmp_path, ".seq.nrrd")
    assert bad_result.path is None and "3-D volume" in bad_result.error
    assert good_result.path.is_file() and good_result.error is None


def test_unknown_format_is_refused(headless, tmp_path):
    with pytest.raises(LungUSError, match="cannot export to '.jpg'"):
        export.export_sequences([], tmp_path, ".jpg")


def test_missing_folder_is_refused(headless, tmp_path):
    with pytest.raises(LungUSError, match="does not exist"):
        export.export_sequences([], tmp_path / "nowhere", ".npz")
