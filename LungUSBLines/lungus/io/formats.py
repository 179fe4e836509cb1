"""Which reader a path needs: by content (magic bytes) first, then by suffix.

Content wins because clips arrive renamed, without suffixes, or with the wrong one
(DICOM exports are often bare UIDs). The suffix decides only when the content says
nothing, e.g. a DICOM without its 128-byte preamble.
"""

from __future__ import annotations

import operator
import os
import re
import zipfile
from pathlib import Path

from lungus.errors import LungUSError, os_problem

#: Largest clip read by default, in voxels (frames x rows x columns). A grey clip costs
#: one byte per voxel in memory, a colour one four. 1.5e9 covers 495 frames of
#: 1080x1920; a 4000x4000x5000 file (8e10) is refused from its header, before any
#: pixel is decoded. Raise it with ``read_clip(..., max_voxels=)`` or ``--max-voxels``.
DEFAULT_MAX_VOXELS = 1_500_000_000

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mpeg", ".mpg", ".wmv", ".mkv", ".webm")
DICOM_SUFFIXES = (".dcm", ".dicom")
NRRD_SUFFIXES = (".nrrd", ".nhdr")
NUMPY_SUFFIXES = (".npy", ".npz")
GIF_SUFFIXES = (".gif",)
#: Single still images: read as 1-frame clips, and as the frames of a frame folder.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

#: Suffixes that mark a file as a clip in a recursive folder search (find_clips).
#: Still images are left out: inside a frame folder every frame would count as a clip.
CLIP_SUFFIXES = VIDEO_SUFFIXES + GIF_SUFFIXES + DICOM_SUFFIXES + NRRD_SUFFIXES + NUMPY_SUFFIXES

_ASF_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
_MP4_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")


def sniff_format(path: str | os.PathLike) -> str | None:
    """The clip format the first bytes of a file announce, or None.

    Returns one of ``dicom nrrd npy npz gif video image``.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError:
        return None
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(b"NRRD000"):
        return "nrrd"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"PK\x03\x04"):
        return "npz" if _is_npz(path) else None
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[4:8] in _MP4_BOXES:
        return "video"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):  # MPEG program / video stream
        return "video"
    if len(head) > 376 and head[0] == 0x47 and head[188] == 0x47 and head[376] == 0x47:  # MPEG-TS
        return "video"
    if head[:16] == _ASF_GUID:  # WMV / ASF
        return "video"
    if head[:4] == b"\x1a\x45\xdf\xa3":  # Matroska / WebM
        return "video"
    if head[:8] == b"\x89PNG\r\n\x1a\n" or head[:3] == b"\xff\xd8\xff" or head[:2] == b"BM":
        return "image"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image"
    return None


def _is_npz(path: str | os.PathLike) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, NotImplementedError, ValueError, EOFError):
        return False  # NotImplementedError: a zip version or method zipfile cannot read
    return bool(names) and all(name.endswith(".npy") for name in names)


def suffix_format(path: str | os.PathLike) -> str | None:
    """The clip format a file name's suffix suggests, or None."""
    suffix = Path(path).suffix.lower()
    for fmt, suffixes in (
        ("video", VIDEO_SUFFIXES),
        ("gif", GIF_SUFFIXES),
        ("dicom", DICOM_SUFFIXES),
        ("nrrd", NRRD_SUFFIXES),
        ("image", IMAGE_SUFFIXES),
    ):
        if suffix in suffixes:
            return fmt
    if suffix in NUMPY_SUFFIXES:
        return suffix[1:]
    return None


def clip_format(path: str | os.PathLike) -> str:
    """Which reader ``path`` needs; raises LungUSError for a missing, empty or unknown file.

    Returns one of ``frames`` (a folder of frame images), ``dicom nrrd npy npz gif video image``.
    """
    target = Path(path)
    try:
        if not target.exists():
            raise LungUSError("no such file or folder", target)
        if target.is_dir():
            return "frames"
        if not target.is_file():
            raise LungUSError("not a regular file (a FIFO, socket or device cannot be a clip)", target)
        if target.stat().st_size == 0:
            raise LungUSError("the file is empty (0 bytes)", target)
        with open(target, "rb"):
            pass  # unreadable is said as such here, not later as "corrupt"
    except OSError as error:
        raise LungUSError(os_problem(error), target) from error
    fmt = sniff_format(target) or suffix_format(target)
    if fmt is None:
        raise LungUSError(
            "not a clip: neither its content nor its suffix is a supported format "
            "(video, GIF, DICOM, NRRD, .npy/.npz, image, or a folder of frames)",
            target,
        )
    return fmt


def looks_like_clip(path: str | os.PathLike) -> bool:
    """True for a file that holds a clip by its content, or by a clip suffix.

    Folders (frame folders) and still images return False: a recursive search would
    otherwise list every frame. Cheap: reads at most 512 bytes.
    """
    target = Path(path)
    if not target.is_file():
        return False
    fmt = sniff_format(target)
    if fmt is not None:
        return fmt != "image"
    return target.suffix.lower() in CLIP_SUFFIXES


def find_clips(root: str | os.PathLike, *, recursive: bool = True) -> list[Path]:
    """Clip files under ``root`` in natural order (``root`` itself if it is a file).

    Hidden files and folders are skipped, as are files that look like no clip
    (sidecar JSON, CSV). A file with no suffix counts when its content is a clip.
    """
    top = Path(root)
    try:
        if top.is_file():
            return [top]
        if not top.is_dir():
            raise LungUSError("no such file or folder", top)
        pattern = top.rglob("*") if recursive else top.glob("*")
        found = [
            path
            for path in pattern
            if not any(part.startswith(".") for part in path.relative_to(top).parts) and looks_like_clip(path)
        ]
    except OSError as error:  # a folder that may be listed but not searched (no x permission)
        raise LungUSError(os_problem(error, "search this folder"), error.filename or top) from error
    return sorted(found, key=natural_key)


_DIGITS = re.compile(r"(\d+)")


def natural_key(path: str | os.PathLike) -> tuple:
    """Sort key putting ``frame2`` before ``frame10`` (numbers compare as numbers)."""
    text = os.fspath(path)
    return tuple(int(part) if part.isdigit() else part.lower() for part in _DIGITS.split(text))


def file_stem(clip: str | os.PathLike) -> str:
    """A clip's file name without its suffix (``scan.seq.nrrd`` -> ``scan``), safe as a file name:
    characters other than letters, digits, ``-``, ``_`` and ``.`` become ``_``; at most 80 characters.
    Names the files written per clip (inference masks and overlays, review masks)."""
    name = Path(clip).name
    for suffix in (".seq.nrrd",):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    name = Path(name).stem if "." in name else name
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80] or "clip"


def check_voxels(path: str | os.PathLike, n_frames: int, height: int, width: int, max_voxels: int) -> None:
    """Refuse a clip whose header dimensions are empty or exceed ``max_voxels``.

    Called by every reader with the sizes from the header, before pixel data is decoded.
    """
    if n_frames <= 0:
        raise LungUSError("the clip holds no frames", path)
    if height <= 0 or width <= 0:
        raise LungUSError(f"the frames are empty ({height}x{width} pixels)", path)
    voxels = int(n_frames) * int(height) * int(width)
    if voxels > max_voxels:
        raise LungUSError(
            f"{n_frames} frames of {height}x{width} = {voxels:,} voxels is more than the limit "
            f"max_voxels={max_voxels:,}; refusing to load it (raise the limit with --max-voxels "
            f"only if the machine has the memory)",
            path,
        )


def validate_max_voxels(max_voxels: int) -> int:
    """``max_voxels`` as an int; ValueError unless it is a positive whole number."""
    try:
        value = operator.index(max_voxels)
    except TypeError:
        value = 0
    if isinstance(max_voxels, bool) or value <= 0:
        raise ValueError(f"max_voxels must be a positive integer (e.g. 1_500_000_000), got {max_voxels!r}")
    return value


def json_type_name(value) -> str:
    """What a parsed JSON value is, in JSON's words (null, string, array, ...)."""
    names = {
        type(None): "null",
        bool: "boolean",
        int: "number",
        float: "number",
        str: "string",
        list: "array",
    }
    return names.get(type(value), "object")
