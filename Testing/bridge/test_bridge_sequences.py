"""Clips become Slicer volume sequences with a browser, and come back unchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")

from lungus.errors import LungUSError  # noqa: E402
from LungUSBLinesLib import sequences  # noqa: E402  (after the skip)


def _ras(volume, i, j):
    import vtk

    matrix = vtk.vtkMatrix4x4()
    volume.GetIJKToRASMatrix(matrix)
    return matrix.MultiplyPoint((i, j, 0, 1))[:3]


def test_clip_becomes_one_scalar_volume_per_frame(headless, small_clip):
    nodes = sequences.clip_to_sequence(headless.scene, small_clip)
    assert nodes.sequence.GetNumberOfDataNodes() == 4
    assert all(nodes.sequence.GetNthDataNode(i).IsA("vtkMRMLScalarVolumeNode") for i in range(4))
    assert nodes.sequence.GetName() == "zone2"


def test_sequence_voxels_equal_the_frames(headless, small_clip):
    nodes = sequences.clip_to_sequence(headless.scene, small_clip)
    for i in range(small_clip.n_frames):
        voxels = slicer.util.arrayFromVolume(nodes.sequence.GetNthDataNode(i))
        np.testing.assert_array_equal(voxels[0], small_clip.frames[i])


def test_row_zero_is_anterior_and_column_zero_is_right(headless, small_clip):
    # In Slicer's axial view anterior is up and patient right is screen left, so
    # numpy row 0 shows at the top and column 0 at the left, as in the video.
    frame = sequences.clip_to_sequence(headless.scene, small_clip).sequence.GetNthDataNode(0)
    top_left, bottom_left, top_right = _ras(frame, 0, 0), _ras(frame, 0, 5), _ras(frame, 7, 0)
    assert top_left[1] > bottom_left[1]
    assert top_left[0] > top_right[0]


def test_ijk_to_ras_directions_are_minus_x_minus_y(headless, small_clip):
    import vtk

    frame = sequences.clip_to_sequence(headless.scene, small_clip).sequence.GetNthDataNode(0)
    directions = vtk.vtkMatrix4x4()
    frame.GetIJKToRASDirectionMatrix(directions)
    assert [directions.GetElement(r, c) for r in range(3) for c in range(3)] == [-1, 0, 0, 0, -1, 0, 0, 0, 1]


def test_spacing_is_column_row_from_the_clip(headless, small_clip):
    frame = sequences.clip_to_sequence(headless.scene, small_clip).sequence.GetNthDataNode(0)
    assert frame.GetSpacing() == pytest.approx((0.5, 0.3, 1.0))


def test_unknown_spacing_is_shown_at_one_mm(headless, small_frames):
    from lungus.io.clip import Clip

    frame = sequences.clip_to_sequence(
        headless.scene, Clip(frames=small_frames, fps=10)
    ).sequence.GetNthDataNode(0)
    assert frame.GetSpacing() == pytest.approx((1.0, 1.0, 1.0))


def test_index_values_are_seconds_from_fps(headless, small_clip):
    sequence = sequences.clip_to_sequence(headless.scene, small_clip).sequence
    assert sequence.GetIndexName() == "time"
    assert sequence.GetIndexUnit() == "s"
    values = [float(sequence.GetNthIndexValue(i)) for i in range(4)]
    assert values == pytest.approx([0.0, 0.04, 0.08, 0.12])


def test_unknown_fps_indexes_by_frame_number(headless, small_frames):
    from lungus.io.clip import Clip

    sequence = sequences.clip_to_sequence(headless.scene, Clip(frames=small_frames)).sequence
    assert sequence.GetIndexName() == "frame"
    assert [sequence.GetNthIndexValue(i) for i in range(4)] == ["0", "1", "2", "3"]


def test_browser_plays_at_the_clip_fps(headless, small_clip):
    nodes = sequences.clip_to_sequence(headless.scene, small_clip)
    assert nodes.browser.GetMasterSequenceNode() is nodes.sequence
    assert nodes.browser.GetPlaybackRateFps() == pytest.approx(25.0)


def test_proxy_follows_the_selected_frame(headless, small_clip):
    nodes = sequences.clip_to_sequence(headless.scene, small_clip)
    nodes.browser.SetSelectedItemNumber(2)
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(nodes.proxy)[0], small_clip.frames[2])


def test_proxy_window_level_spans_the_whole_clip(headless, small_clip):
    display = sequences.clip_to_sequence(headless.scene, small_clip).proxy.GetDisplayNode()
    assert not display.GetAutoWindowLevel()
    assert display.GetWindowLevelMin() == pytest.approx(small_clip.frames.min())
    assert display.GetWindowLevelMax() == pytest.approx(small_clip.frames.max())


def test_synchronized_sequence_steps_with_the_browser(headless, small_clip):
    nodes = sequences.clip_to_sequence(headless.scene, small_clip)
    masks = (small_clip.frames > 100).astype(np.uint8)
    mask_sequence = sequences.frames_to_sequence(
        headless.scene,
        masks,
        "masks",
        fps=25.0,
        spacing_mm=(0.3, 0.5),
        node_class="vtkMRMLLabelMapVolumeNode",
    )
    mask_proxy = sequences.add_synchronized_sequence(nodes.browser, mask_sequence)
    nodes.browser.SetSelectedItemNumber(3)
    assert mask_proxy.IsA("vtkMRMLLabelMapVolumeNode")
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(mask_proxy)[0], masks[3])


def test_clip_summary_is_stored_on_the_sequence(headless, small_clip):
    sequence = sequences.clip_to_sequence(headless.scene, small_clip).sequence
    assert json.loads(sequence.GetAttribute(sequences.CLIP_SUMMARY_ATTRIBUTE)) == json.loads(
        json.dumps(small_clip.summary())
    )


def test_progress_reaches_one(headless, small_frames):
    seen = []
    sequences.frames_to_sequence(headless.scene, small_frames, "p", fps=5.0,
                                 progress=lambda done, total, _what: seen.append(done / total))
    assert seen[-1] == 1.0 and seen == sorted(seen)


def test_sequence_to_frames_returns_the_frames(headless, small_clip):
    sequence = sequences.clip_to_sequence(headless.scene, small_clip).sequence
    frames = sequences.sequence_to_frames(sequence)
    assert frames.dtype == np.uint8
    np.testing.assert_array_equal(frames, small_clip.frames)


def test_sequence_to_clip_recovers_fps_and_spacing(headless, small_clip):
    sequence = sequences.clip_to_sequence(headless.scene, small_clip).sequence
    clip = sequences.sequence_to_clip(sequence)
    assert clip.fps == pytest.approx(25.0)
    assert clip.spacing_mm == pytest.approx((0.3, 0.5))


def test_sequence_to_clip_keeps_unknown_spacing_unknown(headless, small_frames):
    from lungus.io.clip import Clip

    sequence = sequences.clip_to_sequence(headless.scene, Clip(frames=small_frames, fps=30.0)).sequence
    assert sequences.sequence_to_clip(sequence).spacing_mm is None


def test_fps_of_a_millisecond_indexed_sequence(headless, small_frames):
    sequence = sequences.frames_to_sequence(headless.scene, small_frames, "ms")  # indexed 0, 1, 2, 3
    for i in reversed(range(1, 4)):  # last first, so the items never change order
        sequence.UpdateIndexValue(str(i), str(i * 50))
    sequence.SetIndexUnit("ms")
    assert sequences.sequence_fps(sequence) == pytest.approx(20.0)


def test_sequence_of_3d_volumes_is_refused(headless):
    volume = slicer.vtkMRMLScalarVolumeNode()
    slicer.util.updateVolumeFromArray(volume, np.zeros((3, 4, 5), np.uint8))
    sequence = headless.scene.AddNewNodeByClass("vtkMRMLSequenceNode", "ct")
    sequence.SetDataNodeAtValue(volume, "0")
    with pytest.raises(LungUSError, match="3-D volume"):
        sequences.sequence_to_frames(sequence)


def test_frames_of_different_sizes_are_refused(headless):
    sequence = headless.scene.AddNewNodeByClass("vtkMRMLSequenceNode", "mixed")
    for i, shape in enumerate([(1, 4, 5), (1, 4, 6)]):
        volume = slicer.vtkMRMLScalarVolumeNode()
        slicer.util.updateVolumeFromArray(volume, np.zeros(shape, np.uint8))
        sequence.SetDataNodeAtValue(volume, str(i))
    with pytest.raises(LungUSError, match="item 1 is 6x4"):
        sequences.sequence_to_frames(sequence)


def test_float_frames_outside_8_bit_are_refused_not_rescaled(headless, small_frames):
    sequence = sequences.frames_to_sequence(
        headless.scene, small_frames.astype(np.float32) * 10, "f", fps=5.0
    )
    with pytest.raises(LungUSError, match="rescale it to 0-255"):
        sequences.sequence_to_clip(sequence)
