"""Sequences to .seq.nrrd and scenes to .mrb, read back by Slicer's own readers."""

from __future__ import annotations

import os

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")

from lungus.errors import LungUSError  # noqa: E402
from LungUSBLinesLib import sequences, storage  # noqa: E402
from LungUSBLinesLib.scene import new_headless_scene  # noqa: E402


def _read_with_slicer(path):
    """Read a .seq.nrrd with Slicer's vtkMRMLVolumeSequenceStorageNode, in a fresh scene."""
    headless = new_headless_scene()
    sequence = headless.scene.AddNewNodeByClass("vtkMRMLSequenceNode")
    reader = slicer.vtkMRMLVolumeSequenceStorageNode()
    headless.scene.AddNode(reader)
    reader.SetFileName(str(path))
    assert reader.ReadData(sequence)
    return headless, sequence


def test_saved_sequence_reads_back_with_equal_frames(headless, small_clip, tmp_path):
    sequence = sequences.clip_to_sequence(headless.scene, small_clip).sequence
    path = storage.save_sequence(sequence, tmp_path / "clip.seq.nrrd")
    other, read_back = _read_with_slicer(path)
    with other:
        np.testing.assert_array_equal(sequences.sequence_to_frames(read_back), small_clip.frames)


def test_saved_sequence_keeps_index_values_and_unit(headless, small_clip, tmp_path):
    sequence = sequences.clip_to_sequence(headless.scene, small_clip).sequence
    path = storage.save_sequence(sequence, tmp_path / "clip.seq.nrrd")
    other, read_back = _read_with_slicer(path)
    with other:
        assert read_back.GetIndexName() == "time" and read_back.GetIndexUnit() == "s"
        assert sequences.sequence_index_values(read_back) == pytest.approx([0, 0.04, 0.08, 0.12])


def test_saved_sequence_keeps_spacing_and_orientation(headless, small_clip, tmp_path):
    import vtk

    sequence = sequences.clip_to_sequence(headless.scene, small_clip).sequence
    other, read_back = _read_with_slicer(storage.save_sequence(sequence, tmp_path / "clip.seq.nrrd"))
    with other:
        frame = read_back.GetNthDataNode(0)
        directions = vtk.vtkMatrix4x4()
        frame.GetIJKToRASDirectionMatrix(directions)
        assert frame.GetSpacing() == pytest.approx((0.5, 0.3, 1.0))
        assert [directions.GetElement(i, i) for i in range(3)] == [-1, -1, 1]


def test_save_sequence_leaves_no_temporary_file(headless, small_clip, tmp_path):
    sequence = sequences.clip_to_sequence(headless.scene, small_clip).sequence
    storage.save_sequence(sequence, tmp_path / "clip.seq.nrrd")
    assert sorted(os.listdir(tmp_path)) == ["clip.seq.nrrd", "scene-work"]


def test_save_sequence_wants_the_seq_nrrd_suffix(headless, small_clip, tmp_path):
    sequence = sequences.clip_to_sequence(headless.scene, small_clip).sequence
    with pytest.raises(LungUSError, match=r"must end with \.seq\.nrrd"):
        storage.save_sequence(sequence, tmp_path / "clip.nrrd")


def test_read_sequence_makes_a_playable_sequence(headless, small_clip, tmp_path):
    written = sequences.clip_to_sequence(headless.scene, small_clip).sequence
    path = storage.save_sequence(written, tmp_path / "clip.seq.nrrd")
    read_back = storage.read_sequence(headless.scene, path)
    browser, proxy = sequences.create_browser(
        headless.scene, read_back, fps=sequences.sequence_fps(read_back)
    )
    browser.SetSelectedItemNumber(1)
    assert read_back.GetName() == "clip"
    assert browser.GetPlaybackRateFps() == pytest.approx(25.0)
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(proxy)[0], small_clip.frames[1])


def test_read_sequence_of_a_non_sequence_file_is_a_clear_error(headless, tmp_path):
    path = tmp_path / "notes.seq.nrrd"
    path.write_text("these are not voxels")
    with pytest.raises(LungUSError, match="not a volume sequence"):
        storage.read_sequence(headless.scene, path)


def test_mrb_round_trip_keeps_frames_browser_and_summary(headless, small_clip, tmp_path):
    nodes = sequences.clip_to_sequence(headless.scene, small_clip)
    bundle = storage.save_scene(headless.scene, tmp_path / "review.mrb")
    with new_headless_scene(tmp_path / "other-work") as other:
        storage.load_scene(other.scene, bundle)
        sequence = other.scene.GetFirstNodeByClass("vtkMRMLSequenceNode")
        browser = other.scene.GetFirstNodeByClass("vtkMRMLSequenceBrowserNode")
        np.testing.assert_array_equal(sequences.sequence_to_frames(sequence), small_clip.frames)
        assert browser.GetPlaybackRateFps() == pytest.approx(25.0)
        assert browser.GetProxyNode(sequence) is not None
        assert sequences.stored_clip_summary(sequence) == sequences.stored_clip_summary(nodes.sequence)


def test_mrb_written_from_a_relative_path_lands_there(headless, small_clip, tmp_path, monkeypatch):
    sequences.clip_to_sequence(headless.scene, small_clip)
    monkeypatch.chdir(tmp_path)
    storage.save_scene(headless.scene, "relative.mrb")
    assert (tmp_path / "relative.mrb").is_file()
    assert os.getcwd() == str(tmp_path)


def test_loading_a_non_bundle_is_a_clear_error_and_keeps_the_working_folder(headless, tmp_path):
    path = tmp_path / "broken.mrb"
    path.write_bytes(b"not a zip at all")
    working_dir = os.getcwd()
    with pytest.raises(LungUSError, match="not a Slicer scene bundle"):
        storage.load_scene(headless.scene, path)
    assert os.getcwd() == working_dir


def test_loading_a_missing_bundle_names_the_file(headless, tmp_path):
    with pytest.raises(LungUSError, match="gone.mrb: no such file"):
        storage.load_scene(headless.scene, tmp_path / "gone.mrb")
