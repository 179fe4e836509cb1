"""read_clip: one call for every clip format."""

from __future__ import annotations

import os
from pathlib import Path

from lungus.errors import LungUSError, error_detail, os_problem
from lungus.io.clip import Clip
from lungus.io.formats import DEFAULT_MAX_VOXELS, clip_format, validate_max_voxels
from lungus.io.geometry import SlicerGeometry


def read_clip(
    path: str | os.PathLike,
    *,
    fan: bool = True,
    identifiers: bool = False,
    max_voxels: int = DEFAULT_MAX_VOXELS,
) -> Clip:
    """Read any supported clip into a Clip (grey uint8 frames, fps, spacing, fan).

    Formats, recognised by content first and suffix second: video (.mp4 .avi .mov .m4v
    .mpeg/.mpg .wmv .mkv .webm, and GIF), ultrasound DICOM (native or JPEG, grey, RGB
    or YBR), NRRD (Slicer .seq.nrrd volume sequences and plain stacks), .npy/.npz, a
    single image, or a folder of numbered frame images (natural order).

    ``fan``: find the fan (from an AnonymizeUltrasound JSON beside the clip if there is
    one, else from the frames) and set ``clip.fan``. ``identifiers``: copy DICOM patient
    and study identifiers into ``meta["identifiers"]`` (off by default: results never
    carry them unless asked). ``max_voxels``: refuse clips larger than this
    (frames x rows x columns) from their header, before decoding.

    Every problem with the input raises LungUSError naming the file and the cause.
    """
    max_voxels = validate_max_voxels(max_voxels)
    target = Path(os.fsdecode(path))  # bytes names (not UTF-8) arrive as str with surrogates
    fmt = clip_format(target)
    try:
        clip = _read(target, fmt, max_voxels, identifiers)
        if fan:
            clip.fan = _clip_fan(target, clip)
    except LungUSError:
        raise
    except MemoryError as error:
        raise LungUSError(
            "not enough memory to read this clip (lower its size or free memory)", target
        ) from error
    except OSError as error:
        raise LungUSError(os_problem(error), error.filename or target) from error
    except Exception as error:  # noqa: BLE001 - the one error path: nothing else leaves a reader
        # A reader meeting input nobody foresaw: still one line naming the file, not a traceback.
        raise LungUSError(
            f"cannot read this {fmt} clip ({type(error).__name__}: {error_detail(error)})", target
        ) from error
    return clip


def slicer_ijk_to_lps(path: str | os.PathLike) -> SlicerGeometry | None:
    """The IJK-to-LPS of the volume Slicer makes from this clip file, or None where the file does not
    say (lungus.io.geometry). Reads headers only; LungUSError for an unreadable file."""
    target = Path(path)
    fmt = clip_format(target)
    if fmt == "dicom":
        from lungus.io.dicom import read_dicom_dataset, slicer_dicom_ijk_to_lps

        return slicer_dicom_ijk_to_lps(read_dicom_dataset(target))
    if fmt == "nrrd":
        from lungus.io.seqnrrd import nrrd_ijk_to_lps, read_nrrd_header

        return nrrd_ijk_to_lps(read_nrrd_header(target), target)
    return None


def _clip_fan(path: Path, clip: Clip):
    """The fan from an AnonymizeUltrasound JSON beside the clip, else detected from the frames."""
    from lungus.io.fan import detect_fan, fan_sidecar_path, read_fan_sidecar

    sidecar = fan_sidecar_path(path)
    geometry = read_fan_sidecar(sidecar, (clip.height, clip.width)) if sidecar is not None else None
    if geometry is not None:
        clip.meta["fan_json"] = sidecar.name
    return geometry or detect_fan(clip.frames)


def _read(path: Path, fmt: str, max_voxels: int, identifiers: bool) -> Clip:
    if fmt == "video":
        from lungus.io.video import read_video

        return read_video(path, max_voxels)
    if fmt in ("gif", "image"):
        from lungus.io.video import read_with_pillow

        return read_with_pillow(path, max_voxels, fmt=fmt)
    if fmt == "dicom":
        from lungus.io.dicom import read_dicom

        return read_dicom(path, max_voxels, identifiers=identifiers)
    if fmt == "nrrd":
        from lungus.io.seqnrrd import read_nrrd

        return read_nrrd(path, max_voxels)
    if fmt == "npy":
        from lungus.io.arrays import read_npy

        return read_npy(path, max_voxels)
    if fmt == "npz":
        from lungus.io.arrays import read_npz

        return read_npz(path, max_voxels)
    if fmt == "frames":
        from lungus.io.arrays import read_frame_folder

        return read_frame_folder(path, max_voxels)
    raise LungUSError(f"no reader for format {fmt!r}", path)
