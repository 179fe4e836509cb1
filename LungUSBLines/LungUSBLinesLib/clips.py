"""Open a clip file in a scene, and describe a clip for the review panel."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, NamedTuple

from lungus.progress import Progress
from LungUSBLinesLib.sequences import (
    ClipNodes,
    clip_to_sequence,
    sequence_fps,
    sequence_spacing_mm,
    stored_clip_summary,
)

if TYPE_CHECKING:
    from lungus.io.clip import Clip


class LoadedClip(NamedTuple):
    clip: Clip
    nodes: ClipNodes


def load_clip(
    scene: Any,
    path: str | os.PathLike,
    *,
    name: str | None = None,
    progress: Progress | None = None,
) -> LoadedClip:
    """Read any clip lungus.io reads (video, DICOM, NRRD/.seq.nrrd, frame folder, .npy/.npz)
    and add it to ``scene`` as a sequence with its browser.

    Bad input raises LungUSError naming the file and the problem. ``progress(done, total, what)``
    (lungus.progress) counts two halves: reading the clip, then building its sequence.
    """
    from lungus.io import read_clip  # heavy (OpenCV, pydicom): only when a clip is opened

    if progress is not None:
        progress(0, 2, "reading the clip")
    clip = read_clip(path)
    if progress is not None:
        progress(1, 2, "clip read")
    step = None if progress is None else (lambda done, total, what: progress(1 + done / max(total, 1), 2, what))
    nodes = clip_to_sequence(scene, clip, name, progress=step)
    return LoadedClip(clip, nodes)


def sequence_summary(sequence: Any) -> dict[str, Any]:
    """The clip record of a sequence: the one stored when lungus loaded it, or what the
    nodes say for a sequence Slicer loaded itself (then there is no fan geometry)."""
    summary = stored_clip_summary(sequence)
    if summary is not None:
        return summary
    n_frames = sequence.GetNumberOfDataNodes()
    first = sequence.GetNthDataNode(0) if n_frames else None
    image = first.GetImageData() if first is not None and first.IsA("vtkMRMLVolumeNode") else None
    width, height, _ = image.GetDimensions() if image is not None else (None, None, None)
    fps = sequence_fps(sequence)
    spacing = sequence_spacing_mm(sequence) if image is not None else None
    storage = sequence.GetStorageNode()
    return {
        "path": storage.GetFileName() if storage is not None else None,
        "n_frames": n_frames,
        "height": height,
        "width": width,
        "fps": fps,
        "spacing_mm": None if spacing is None else list(spacing),
        "duration_s": None if not fps else round(n_frames / fps, 3),
        "fan": None,
    }


def _number(value: float) -> str:
    return f"{value:.4g}"


def describe_clip(summary: dict[str, Any]) -> str:
    """Readable lines for a clip record (the `lungus info --json` keys)."""
    lines = []
    frames = f"Frames: {summary['n_frames']}"
    if summary.get("fps"):
        frames += f" at {_number(summary['fps'])} fps ({_number(summary['duration_s'])} s)"
    else:
        frames += " (frame rate unknown)"
    lines.append(frames)
    if summary.get("width") is not None:
        lines.append(f"Size: {summary['width']} x {summary['height']} pixels (width x height)")
    spacing = summary.get("spacing_mm")
    if spacing:
        lines.append(f"Pixel spacing: {_number(spacing[0])} x {_number(spacing[1])} mm (row x column)")
    else:
        lines.append("Pixel spacing: unknown (shown as 1 mm)")
    fan = summary.get("fan")
    if fan:
        row0, col0, row1, col1 = fan["bbox"]
        text = f"Fan: {fan['kind']}, rows {row0}-{row1}, columns {col0}-{col1}"
        text += f", {100 * fan['area_fraction']:.0f}% of the frame"
        if fan.get("apex"):
            text += f"; apex at (row {_number(fan['apex'][0])}, column {_number(fan['apex'][1])})"
        if fan.get("angles_deg"):
            text += f"; {_number(fan['angles_deg'][0])} to {_number(fan['angles_deg'][1])} degrees"
        if fan.get("radii"):
            text += f"; radius {_number(fan['radii'][0])}-{_number(fan['radii'][1])} px"
        text += f" ({fan.get('source', 'detected')})"
        lines.append(text)
    else:
        lines.append("Fan: not found")
    if summary.get("path"):
        lines.append(f"File: {summary['path']}")
    return "\n".join(lines)


def clip_file_name_filter() -> str:
    """A file-dialog filter for every clip suffix lungus.io reads, then all files
    (DICOM exports often have no suffix; the reader goes by content)."""
    from lungus.io.formats import CLIP_SUFFIXES, IMAGE_SUFFIXES

    patterns = " ".join(f"*{suffix}" for suffix in CLIP_SUFFIXES + IMAGE_SUFFIXES)
    return f"Lung-ultrasound clips ({patterns});;All files (*)"
