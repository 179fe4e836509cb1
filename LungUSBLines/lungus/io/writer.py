"""write_clip: the format follows the suffix; every write is atomic."""

from __future__ import annotations

import os
from pathlib import Path

from lungus.errors import LungUSError
from lungus.io.clip import Clip

#: Output suffix -> what is written. A path with no suffix (or an existing folder) gets PNG frames.
WRITE_FORMATS = {
    ".seq.nrrd": "Slicer volume sequence (NRRD)",
    ".nrrd": "NRRD 3-D stack (columns, rows, frames)",
    ".mp4": "MPEG-4 video ('mp4v')",
    ".m4v": "MPEG-4 video ('mp4v')",
    ".mov": "QuickTime video ('mp4v')",
    ".avi": "AVI video (MJPG)",
    ".gif": "animated GIF",
    ".npy": "NumPy array (T, H, W) uint8",
    ".npz": "NumPy archive: frames, fps, spacing_mm (+ rgb)",
    ".dcm": "Ultrasound Multi-frame Image Storage DICOM",
    "folder": "PNG frames frame_0000.png ... + lungus_clip.json",
}
_COMPRESSIONS = {
    ".seq.nrrd": ("gzip",),
    ".nrrd": ("gzip",),
    ".npz": ("gzip",),
    ".dcm": ("jpeg",),
}


def output_kind(path: str | os.PathLike) -> str:
    """The WRITE_FORMATS key a path selects, or LungUSError for an unsupported suffix."""
    target = Path(path)
    name = target.name.lower()
    if name.endswith(".seq.nrrd"):
        return ".seq.nrrd"
    suffix = target.suffix.lower()
    if suffix in WRITE_FORMATS:
        return suffix
    if target.is_dir() or not suffix or os.fspath(path).endswith(("/", os.sep)):
        return "folder"
    supported = " ".join(key for key in WRITE_FORMATS if key != "folder")
    raise LungUSError(
        f"cannot write {suffix!r} clips; use one of {supported}, or a folder name without suffix", target
    )


def write_clip(
    clip: Clip, path: str | os.PathLike, *, compression: str | None = None, quality: int = 95
) -> Path:
    """Write ``clip`` to ``path``, the format chosen by the suffix (see WRITE_FORMATS).

    ``compression``: ``"gzip"`` for .nrrd/.seq.nrrd/.npz, ``"jpeg"`` for .dcm (JPEG
    baseline frames, ``quality`` 1-100); None (default) stores raw pixels, which Slicer
    loads fastest. Colour (``clip.rgb``) is kept where the format can hold it (not .npy).
    Videos and DICOM need a frame rate: a clip without one is written at 25 fps.
    The file appears complete or not at all (temporary file, then rename).
    """
    target = Path(path)
    kind = output_kind(target)
    if compression is not None and compression not in _COMPRESSIONS.get(kind, ()):
        allowed = ", ".join(f"{name} for {key}" for key, names in _COMPRESSIONS.items() for name in names)
        raise ValueError(f"compression={compression!r} does not apply to {kind} output (allowed: {allowed})")
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"quality must be between 1 and 100, got {quality}")
    if kind == ".seq.nrrd":
        from lungus.io.seqnrrd import write_seq_nrrd

        return write_seq_nrrd(clip, target, compression)
    if kind == ".nrrd":
        from lungus.io.seqnrrd import write_nrrd

        return write_nrrd(clip, target, compression)
    if kind in (".mp4", ".m4v", ".mov", ".avi"):
        from lungus.io.video import write_video

        return write_video(clip, target)
    if kind == ".gif":
        from lungus.io.video import write_gif

        return write_gif(clip, target)
    if kind == ".npy":
        from lungus.io.arrays import write_npy

        return write_npy(clip, target)
    if kind == ".npz":
        from lungus.io.arrays import write_npz

        return write_npz(clip, target, compression)
    if kind == ".dcm":
        from lungus.io.dicom import write_dicom

        return write_dicom(clip, target, compression, quality)
    from lungus.io.arrays import write_frame_folder

    return write_frame_folder(clip, target)
