"""The engine's clip files and Slicer's own readers and writers agree (issue 2's real Slicer check)."""

from __future__ import annotations

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")

from lungus.io import read_clip, write_clip  # noqa: E402
from lungus.io.clip import Clip  # noqa: E402
from LungUSBLinesLib import clips, sequences, storage  # noqa: E402


def _read_with_slicer(headless, path):
    sequence = headless.scene.AddNewNodeByClass("vtkMRMLSequenceNode")
    reader = slicer.vtkMRMLVolumeSequenceStorageNode()
    headless.scene.AddNode(reader)
    reader.SetFileName(str(path))
    assert reader.ReadData(sequence), "Slicer's volume sequence reader refused the file"
    return sequence


@pytest.fixture
def lungus_seq_nrrd(small_clip, tmp_path):
    return write_clip(small_clip, tmp_path / "written-by-lungus.seq.nrrd")


def test_lungus_seq_nrrd_reads_in_slicer_with_equal_voxels(headless, lungus_seq_nrrd, small_clip):
    sequence = _read_with_slicer(headless, lungus_seq_nrrd)
    assert sequence.GetNumberOfDataNodes() == small_clip.n_frames
    for i in range(small_clip.n_frames):
        np.testing.assert_array_equal(
            slicer.util.arrayFromVolume(sequence.GetNthDataNode(i))[0], small_clip.frames[i]
        )


def test_lungus_seq_nrrd_reads_in_slicer_with_equal_index_values(headless, lungus_seq_nrrd, small_clip):
    sequence = _read_with_slicer(headless, lungus_seq_nrrd)
    assert sequence.GetIndexName() == "time" and sequence.GetIndexUnit() == "s"
    expected = np.arange(small_clip.n_frames) / small_clip.fps
    np.testing.assert_allclose(sequences.sequence_index_values(sequence), expected, atol=1e-9)


def test_lungus_seq_nrrd_shows_row_zero_at_the_top_in_slicer(headless, lungus_seq_nrrd):
    import vtk

    frame = _read_with_slicer(headless, lungus_seq_nrrd).GetNthDataNode(0)
    directions = vtk.vtkMatrix4x4()
    frame.GetIJKToRASDirectionMatrix(directions)
    assert [directions.GetElement(i, i) for i in range(3)] == [-1, -1, 1]


def test_lungus_seq_nrrd_keeps_the_spacing_in_slicer(headless, lungus_seq_nrrd):
    frame = _read_with_slicer(headless, lungus_seq_nrrd).GetNthDataNode(0)
    assert frame.GetSpacing() == pytest.approx((0.5, 0.3, 1.0))


def test_slicer_seq_nrrd_reads_in_lungus(headless, small_clip, tmp_path):
    sequence = sequences.clip_to_sequence(headless.scene, small_clip).sequence
    clip = read_clip(storage.save_sequence(sequence, tmp_path / "written-by-slicer.seq.nrrd"), fan=False)
    np.testing.assert_array_equal(clip.frames, small_clip.frames)
    assert clip.fps == pytest.approx(25.0)
    assert clip.spacing_mm == pytest.approx((0.3, 0.5))


@pytest.mark.parametrize("suffix", [".seq.nrrd", ".npz", ".npy", ""])
def test_load_clip_brings_lossless_formats_in_unchanged(headless, small_clip, tmp_path, suffix):
    path = write_clip(small_clip, tmp_path / f"clip{suffix}")
    loaded = clips.load_clip(headless.scene, path)
    np.testing.assert_array_equal(sequences.sequence_to_frames(loaded.nodes.sequence), small_clip.frames)
    assert loaded.nodes.browser.GetMasterSequenceNode() is loaded.nodes.sequence


def test_load_clip_plays_a_video_at_its_frame_rate(headless, tmp_path):
    frames = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (6, 48, 1))
    loaded = clips.load_clip(headless.scene, write_clip(Clip(frames=frames, fps=12.0), tmp_path / "clip.mp4"))
    assert loaded.nodes.sequence.GetNumberOfDataNodes() == 6
    assert loaded.nodes.browser.GetPlaybackRateFps() == pytest.approx(12.0)
    assert np.abs(sequences.sequence_to_frames(loaded.nodes.sequence).astype(int) - frames).mean() < 4


def test_load_clip_reports_progress_to_the_end(headless, small_clip, tmp_path):
    seen = []
    clips.load_clip(headless.scene, write_clip(small_clip, tmp_path / "clip.npz"), progress=lambda done, total, _what: seen.append(done / total))
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)


def test_load_clip_of_a_bad_file_names_it(headless, tmp_path):
    from lungus.errors import LungUSError

    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(LungUSError, match="empty.mp4"):
        clips.load_clip(headless.scene, path)
    assert headless.scene.GetFirstNodeByClass("vtkMRMLSequenceNode") is None


def test_panel_description_of_a_loaded_clip(headless, small_clip, tmp_path):
    loaded = clips.load_clip(headless.scene, write_clip(small_clip, tmp_path / "clip.seq.nrrd"))
    text = clips.describe_clip(clips.sequence_summary(loaded.nodes.sequence))
    assert "Frames: 4 at 25 fps (0.16 s)" in text
    assert "Size: 8 x 6 pixels" in text
    assert "Pixel spacing: 0.3 x 0.5 mm (row x column)" in text
    assert "Fan: " in text


def test_panel_description_of_a_sequence_slicer_loaded_itself(headless, lungus_seq_nrrd):
    sequence = _read_with_slicer(headless, lungus_seq_nrrd)  # no lungus summary attribute
    text = clips.describe_clip(clips.sequence_summary(sequence))
    assert "Frames: 4 at 25 fps" in text and "Fan: not found" in text


def test_file_dialog_filter_offers_every_clip_suffix():
    from lungus.io import CLIP_SUFFIXES

    name_filter = clips.clip_file_name_filter()
    assert all(f"*{suffix}" in name_filter for suffix in CLIP_SUFFIXES)
    assert name_filter.endswith(";;All files (*)")
