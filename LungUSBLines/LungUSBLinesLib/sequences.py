"""Clips as Slicer volume sequences, and back.

A clip becomes a vtkMRMLSequenceNode of single-slice vtkMRMLScalarVolumeNode frames,
indexed by time in seconds, played by a vtkMRMLSequenceBrowserNode at the clip's
frame rate. Frames lie in the axial plane with IJK-to-RAS directions diag(-1, -1, 1):
numpy row 0 shows at the top of the slice view and column 0 at the left (with
identity directions Slicer shows a frame rotated by 180 degrees).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from lungus.errors import LungUSError
from lungus.progress import Progress

if TYPE_CHECKING:
    # lungus.io pulls in OpenCV and pydicom, which Slicer lacks until the user installs them.
    from lungus.io.clip import Clip

# Index of a clip sequence: time in seconds.
TIME_INDEX_NAME = "time"
TIME_INDEX_UNIT = "s"
# Index of a sequence whose frame rate is unknown: plain frame numbers.
FRAME_INDEX_NAME = "frame"
# The clip's `lungus info` record, kept on the sequence node so the panel can show
# what was read (fan geometry included) and unknown fps/spacing survive a round trip.
CLIP_SUMMARY_ATTRIBUTE = "LungUS.ClipSummary"
# Seconds per unit for the time units Slicer sequences commonly carry.
_SECONDS_PER_UNIT = {"s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0, "ms": 1e-3}
# Call the progress callback about this often while building a sequence.
_PROGRESS_STEPS = 20


class ClipNodes(NamedTuple):
    """The MRML nodes that hold one clip."""

    sequence: Any  # vtkMRMLSequenceNode
    browser: Any  # vtkMRMLSequenceBrowserNode
    proxy: Any  # vtkMRMLScalarVolumeNode showing the browser's current frame


def frame_ijk_to_ras(spacing_mm: tuple[float, float] | None) -> vtk.vtkMatrix4x4:
    """IJK-to-RAS matrix of one frame: (row, col) spacing in mm, row 0 at the top."""
    row_mm, col_mm = spacing_mm if spacing_mm is not None else (1.0, 1.0)
    matrix = vtk.vtkMatrix4x4()
    matrix.SetElement(0, 0, -float(col_mm))  # I (column) runs right to left in RAS
    matrix.SetElement(1, 1, -float(row_mm))  # J (row) runs anterior to posterior
    matrix.SetElement(2, 2, 1.0)
    return matrix


def _index_value(seconds: float) -> str:
    # Ten significant digits: 1/fps read back from the values is exact to ~1e-9.
    return f"{seconds:.10g}"


def _checked_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim == 2:
        frames = frames[None]
    if frames.ndim != 3 or frames.shape[0] == 0:
        raise ValueError(f"frames must be a non-empty (T, H, W) array, got shape {frames.shape}")
    return frames


def _fill_volume_sequence(
    sequence: Any,
    frames: np.ndarray,
    index_values: list[str],
    ijk_to_ras: vtk.vtkMatrix4x4,
    node_class: str,
    progress: Progress | None,
) -> None:
    n_frames, height, width = frames.shape
    was_modifying = sequence.StartModify()
    # One template node, outside the scene: the sequence stores a copy of it per frame.
    frame_node = getattr(slicer, node_class)()
    frame_node.SetIJKToRASMatrix(ijk_to_ras)
    report_every = max(1, n_frames // _PROGRESS_STEPS)
    for i in range(n_frames):
        image = vtk.vtkImageData()
        image.SetDimensions(width, height, 1)
        # No copy here: the sequence deep-copies the node, while `pixels` is still alive.
        pixels = np.ascontiguousarray(frames[i]).ravel()
        scalars = numpy_support.numpy_to_vtk(pixels, deep=False)
        image.GetPointData().SetScalars(scalars)
        frame_node.SetAndObserveImageData(image)
        sequence.SetDataNodeAtValue(frame_node, index_values[i])
        if progress is not None and (i + 1) % report_every == 0:
            progress(i + 1, n_frames, "frames added")
    sequence.EndModify(was_modifying)
    if progress is not None:
        progress(n_frames, n_frames, "frames added")


def frames_to_sequence(
    scene: Any,
    frames: np.ndarray,
    name: str,
    *,
    fps: float | None = None,
    spacing_mm: tuple[float, float] | None = None,
    node_class: str = "vtkMRMLScalarVolumeNode",
    progress: Progress | None = None,
) -> Any:
    """Add a sequence node holding ``frames`` (T, H, W) to ``scene``.

    Index values are seconds (``i / fps``) when ``fps`` is known, frame numbers otherwise.
    ``node_class`` may be ``vtkMRMLLabelMapVolumeNode`` for mask sequences.
    ``progress(frames added, frames, what)`` as the frames go in (lungus.progress).
    """
    frames = _checked_frames(frames)
    if fps is not None and not fps > 0:
        raise ValueError(f"fps must be positive or None, got {fps}")
    sequence = scene.AddNewNodeByClass("vtkMRMLSequenceNode", name)
    if fps:
        sequence.SetIndexName(TIME_INDEX_NAME)
        sequence.SetIndexUnit(TIME_INDEX_UNIT)
    else:
        sequence.SetIndexName(FRAME_INDEX_NAME)
        sequence.SetIndexUnit("")
    sequence.SetIndexType(slicer.vtkMRMLSequenceNode.NumericIndex)
    index_values = [_index_value(i / fps if fps else i) for i in range(frames.shape[0])]
    _fill_volume_sequence(sequence, frames, index_values, frame_ijk_to_ras(spacing_mm), node_class, progress)
    return sequence


def frames_like_sequence(
    scene: Any,
    frames: np.ndarray,
    name: str,
    like: Any,
    *,
    node_class: str = "vtkMRMLScalarVolumeNode",
    progress: Progress | None = None,
) -> Any:
    """Add a sequence holding ``frames`` (T, H, W) laid exactly over the clip sequence ``like``:
    the same index name, unit, type and values (so a browser plays them in step) and the same
    frame geometry (so a mask or heat map covers its frame), whoever made ``like``.

    ``frames`` must have one frame per item of ``like``, each the size of its first frame.
    """
    frames = _checked_frames(frames)
    n_items = like.GetNumberOfDataNodes()
    if frames.shape[0] != n_items:
        raise LungUSError(
            f"{frames.shape[0]} frames for sequence {name!r}, but clip {like.GetName()!r} has {n_items}"
        )
    first = like.GetNthDataNode(0)
    if first is None or not first.IsA("vtkMRMLVolumeNode") or first.GetImageData() is None:
        raise LungUSError(f"sequence {like.GetName()!r} does not hold image frames")
    width, height, _ = first.GetImageData().GetDimensions()
    if frames.shape[1:] != (height, width):
        raise LungUSError(
            f"frames of sequence {name!r} are {frames.shape[2]}x{frames.shape[1]} pixels, "
            f"the clip's are {width}x{height}"
        )
    ijk_to_ras = vtk.vtkMatrix4x4()
    first.GetIJKToRASMatrix(ijk_to_ras)
    sequence = scene.AddNewNodeByClass("vtkMRMLSequenceNode", name)
    sequence.SetIndexName(like.GetIndexName())
    sequence.SetIndexUnit(like.GetIndexUnit())
    sequence.SetIndexType(like.GetIndexType())
    index_values = [like.GetNthIndexValue(i) for i in range(n_items)]
    _fill_volume_sequence(sequence, frames, index_values, ijk_to_ras, node_class, progress)
    return sequence


def create_browser(
    scene: Any, sequence: Any, *, fps: float | None = None, name: str | None = None
) -> tuple[Any, Any]:
    """A browser node playing ``sequence`` at ``fps``; returns (browser, proxy node).

    The proxy is the node views display; the Sequences logic fills it with the
    selected frame, so the scene must have one (Slicer's does; see new_headless_scene).
    """
    browser = scene.AddNewNodeByClass("vtkMRMLSequenceBrowserNode", name or f"{sequence.GetName()} browser")
    browser.SetAndObserveMasterSequenceNodeID(sequence.GetID())
    if fps:
        browser.SetPlaybackRateFps(float(fps))
    browser.SetSelectedItemNumber(0)
    proxy = browser.GetProxyNode(sequence)
    if proxy is None:
        raise RuntimeError(
            "the sequence browser made no proxy node: this scene has no Sequences logic "
            "(outside Slicer, build the scene with LungUSBLinesLib.new_headless_scene())"
        )
    if proxy.IsA("vtkMRMLScalarVolumeNode") and not proxy.IsA("vtkMRMLLabelMapVolumeNode"):
        _fix_window_level(proxy, sequence)
    return browser, proxy


def add_synchronized_sequence(browser: Any, sequence: Any) -> Any:
    """Play ``sequence`` (e.g. per-frame results) in step with ``browser``; returns its proxy."""
    browser.AddSynchronizedSequenceNodeID(sequence.GetID())
    proxy = browser.GetProxyNode(sequence)
    if proxy is None:
        raise RuntimeError("the sequence browser made no proxy node: the scene has no Sequences logic")
    return proxy


def _fix_window_level(proxy: Any, sequence: Any) -> None:
    # Auto window/level would re-adapt on every frame and make playback flicker.
    proxy.CreateDefaultDisplayNodes()
    display = proxy.GetDisplayNode()
    if display is None:
        return
    low, high = _voxel_range(sequence)
    display.SetAutoWindowLevel(False)
    display.SetWindowLevelMinMax(low, high if high > low else low + 1)


def _voxel_range(sequence: Any) -> tuple[float, float]:
    # numpy, not vtkImageData.GetScalarRange: that is ~30x slower on 300 frames.
    low, high = np.inf, -np.inf
    for i in range(sequence.GetNumberOfDataNodes()):
        voxels = slicer.util.arrayFromVolume(sequence.GetNthDataNode(i))
        low, high = min(low, voxels.min()), max(high, voxels.max())
    return float(low), float(high)


def clip_name(clip: Clip) -> str:
    """Node name for a clip: its file name without the format suffix."""
    if clip.source is None:
        return "clip"
    file_name = Path(clip.source).name
    for suffix in (".seq.nrrd", ".nii.gz"):
        if file_name.lower().endswith(suffix):
            return file_name[: -len(suffix)]
    return Path(file_name).stem or file_name


def clip_to_sequence(
    scene: Any,
    clip: Clip,
    name: str | None = None,
    *,
    progress: Progress | None = None,
) -> ClipNodes:
    """Add ``clip`` to ``scene`` as a sequence with its browser; returns (sequence, browser, proxy).

    Spacing is the clip's (1 mm when unknown); index values are seconds from the clip's fps.
    The clip's summary (fan geometry included) is kept in the sequence's
    ``LungUS.ClipSummary`` attribute.
    """
    name = name or clip_name(clip)
    sequence = frames_to_sequence(
        scene, clip.frames, name, fps=clip.fps, spacing_mm=clip.spacing_mm, progress=progress
    )
    sequence.SetAttribute(CLIP_SUMMARY_ATTRIBUTE, json.dumps(clip.summary()))
    browser, proxy = create_browser(scene, sequence, fps=clip.fps)
    return ClipNodes(sequence, browser, proxy)


def stored_clip_summary(sequence: Any) -> dict[str, Any] | None:
    """The summary clip_to_sequence stored on ``sequence``, or None for other sequences."""
    text = sequence.GetAttribute(CLIP_SUMMARY_ATTRIBUTE)
    if not text:
        return None
    try:
        summary = json.loads(text)
    except json.JSONDecodeError:
        return None
    return summary if isinstance(summary, dict) else None


def sequence_index_values(sequence: Any) -> np.ndarray:
    """Numeric index values (float64), or an error for a text-indexed sequence."""
    values = [sequence.GetNthIndexValue(i) for i in range(sequence.GetNumberOfDataNodes())]
    try:
        return np.array([float(v) for v in values], dtype=np.float64)
    except ValueError:
        raise LungUSError(f"sequence {sequence.GetName()!r} has non-numeric index values") from None


def sequence_fps(sequence: Any) -> float | None:
    """Frames per second from a time-indexed sequence's index values; None if it has no time index."""
    seconds_per_unit = _SECONDS_PER_UNIT.get((sequence.GetIndexUnit() or "").strip().lower())
    if seconds_per_unit is not None and sequence.GetNumberOfDataNodes() >= 2:
        steps = np.diff(sequence_index_values(sequence)) * seconds_per_unit
        step = float(np.median(steps))
        if step > 0:
            return round(1.0 / step, 6)
    summary = stored_clip_summary(sequence)  # a 1-frame clip still has the fps it was read with
    return None if summary is None or summary.get("fps") is None else float(summary["fps"])


def sequence_spacing_mm(sequence: Any) -> tuple[float, float] | None:
    """(row, col) pixel spacing in mm of the first frame; None when the clip had none."""
    summary = stored_clip_summary(sequence)
    if summary is not None and summary.get("spacing_mm") is None:
        return None  # the 1 mm in the nodes is a stand-in, not a measurement
    if sequence.GetNumberOfDataNodes() == 0:
        return None
    col_mm, row_mm, _ = sequence.GetNthDataNode(0).GetSpacing()
    return (float(row_mm), float(col_mm))


def sequence_to_frames(sequence: Any) -> np.ndarray:
    """The frames of a sequence of single-slice volumes as a (T, H, W) array (row = J, col = I),
    or (T, H, W, C) for vector volumes (C components, e.g. RGB from Slicer's DICOM module).

    The dtype is the volumes' own. Raises LungUSError for an empty sequence, a sequence of
    non-volume nodes, 3-D volumes or frames of different sizes or kinds.
    """
    n_frames = sequence.GetNumberOfDataNodes()
    name = sequence.GetName()
    if n_frames == 0:
        raise LungUSError(f"sequence {name!r} has no frames")
    frames = []
    for i in range(n_frames):
        node = sequence.GetNthDataNode(i)
        # vtkMRMLVectorVolumeNode is a vtkMRMLScalarVolumeNode too.
        if node is None or not node.IsA("vtkMRMLScalarVolumeNode") or node.GetImageData() is None:
            kind = "nothing" if node is None else node.GetClassName()
            raise LungUSError(f"sequence {name!r} item {i} is {kind}, not an image frame")
        voxels = slicer.util.arrayFromVolume(node)
        if voxels.shape[0] != 1:
            raise LungUSError(
                f"sequence {name!r} item {i} is a 3-D volume ({voxels.shape[0]} slices), not a frame"
            )
        if frames and voxels.shape[1:] != frames[0].shape:
            raise LungUSError(
                f"sequence {name!r} item {i} is {_frame_kind(voxels[0])}, item 0 is {_frame_kind(frames[0])}"
            )
        frames.append(voxels[0])  # a view of the node's voxels: np.stack makes the one copy
    return np.stack(frames)


def _frame_kind(frame: np.ndarray) -> str:
    size = f"{frame.shape[1]}x{frame.shape[0]} pixels"
    return size if frame.ndim == 2 else f"{size} with {frame.shape[2]} components"


def sequence_to_clip(sequence: Any) -> Clip:
    """A Clip (uint8 frames, fps, spacing) from a sequence, e.g. one a user labeled in Slicer.

    Integer frames whose values fit 0-255 are converted; anything else is an error that
    says so rather than a silent rescale. Colour frames (vector volumes: RGB or RGBA, as
    Slicer's DICOM module loads colour ultrasound) become grey exactly as lungus.io reads a
    colour clip file, keeping the RGB when it carries colour that matters (Doppler).
    """
    frames = sequence_to_frames(sequence)
    name = sequence.GetName()
    if frames.dtype != np.uint8:
        if not np.issubdtype(frames.dtype, np.integer) or frames.min() < 0 or frames.max() > 255:
            raise LungUSError(
                f"sequence {name!r} has {frames.dtype} voxels in "
                f"[{frames.min()}, {frames.max()}]; clips are 8-bit: rescale it to 0-255 first"
            )
        frames = frames.astype(np.uint8)
    rgb = None
    if frames.ndim == 4:
        frames, rgb = _grey_and_colour(frames, name)
    from lungus.io.clip import Clip

    storage = sequence.GetStorageNode()
    source = storage.GetFileName() if storage is not None and storage.GetFileName() else None
    return Clip(
        frames=frames,
        fps=sequence_fps(sequence),
        spacing_mm=sequence_spacing_mm(sequence),
        source=source,
        meta={"sequence": name},
        rgb=rgb,
    )


def _grey_and_colour(frames: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(grey (T, H, W), RGB or None) of uint8 (T, H, W, C) frames, by the readers' own conversion."""
    from lungus.io.pixels import FrameAccumulator  # OpenCV: only once the engine is installed

    components = frames.shape[3]
    if components not in (1, 3, 4):
        raise LungUSError(
            f"sequence {name!r} has frames of {components} components; "
            "clips are grey (1), RGB (3) or RGBA (4)"
        )
    accumulator = FrameAccumulator(None, max_voxels=frames[..., 0].size, expected_frames=len(frames))
    for frame in frames:
        accumulator.add(frame)
    return accumulator.finish()
