"""NumPy files (.npy, .npz) and folders of numbered frame images."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lungus.atomic import atomic_path
from lungus.errors import LungUSError, error_detail, os_problem
from lungus.io.clip import Clip
from lungus.io.formats import IMAGE_SUFFIXES, check_voxels, json_type_name, natural_key
from lungus.io.pixels import FrameAccumulator, to_uint8

#: Sidecar that keeps a frame folder's fps and spacing (images have nowhere to hold them).
FRAME_FOLDER_SIDECAR = "lungus_clip.json"


def _clip_dimensions(shape: tuple[int, ...], path: Path) -> tuple[int, int, int, bool]:
    """(frames, height, width, colour) for an array shape, or LungUSError."""
    if len(shape) == 2:
        return 1, shape[0], shape[1], False
    if len(shape) == 3 and shape[2] in (3, 4):
        return 1, shape[0], shape[1], True  # one colour frame (H, W, 3)
    if len(shape) == 3:
        return shape[0], shape[1], shape[2], False
    if len(shape) == 4 and shape[3] in (1, 3, 4):
        return shape[0], shape[1], shape[2], shape[3] != 1
    raise LungUSError(
        f"an array of shape {tuple(shape)} is not a clip; expected (T, H, W), (H, W), (T, H, W, 3) or (H, W, 3)",
        path,
    )


def _frames_from_array(
    array: np.ndarray, path: Path, max_voxels: int
) -> tuple[np.ndarray, np.ndarray | None, bool]:
    n_frames, height, width, colour = _clip_dimensions(array.shape, path)
    if array.dtype.kind not in "biuf":
        raise LungUSError(f"array of dtype {array.dtype} holds no image values", path)
    array, rescaled = to_uint8(np.asarray(array))
    array = array.reshape((n_frames, height, width) + (array.shape[-1:] if colour else ()))
    accumulator = FrameAccumulator(path, max_voxels, expected_frames=n_frames)
    for frame in array:
        accumulator.add(frame)
    grey, rgb = accumulator.finish()
    return grey, rgb, rescaled


def read_npy(path: Path, max_voxels: int) -> Clip:
    try:
        with open(path, "rb") as handle:
            shape = _npy_header_shape(handle)
    except Exception as error:  # noqa: BLE001 - numpy raises ValueError/OSError/EOFError for broken files
        raise LungUSError(f"corrupt .npy header ({error_detail(error)})", path) from error
    n_frames, height, width, _ = _clip_dimensions(shape, path)
    check_voxels(path, n_frames, height, width, max_voxels)
    try:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as error:  # noqa: BLE001
        raise LungUSError(f"truncated or corrupt .npy file ({error_detail(error)})", path) from error
    grey, rgb, rescaled = _frames_from_array(mapped, path, max_voxels)
    meta = {"format": "npy"}
    if rescaled:
        meta["intensity_rescaled"] = True
    return Clip(grey, source=path, meta=meta, rgb=rgb)


def _npy_header_shape(handle) -> tuple[int, ...]:
    """The array shape an .npy header declares, without reading the data."""
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        shape, _, _ = np.lib.format.read_array_header_1_0(handle)
    else:
        shape, _, _ = np.lib.format.read_array_header_2_0(handle)
    return tuple(shape)


def _npz_member_shape(archive: zipfile.ZipFile, name: str) -> tuple[int, ...]:
    with archive.open(name) as handle:
        return _npy_header_shape(handle)


def read_npz(path: Path, max_voxels: int) -> Clip:
    try:
        with zipfile.ZipFile(path) as archive:
            members = [name for name in archive.namelist() if name.endswith(".npy")]
            if not members:
                raise LungUSError("the .npz archive holds no arrays", path)
            key = "frames.npy" if "frames.npy" in members else members[0]
            n_frames, height, width, _ = _clip_dimensions(_npz_member_shape(archive, key), path)
        check_voxels(path, n_frames, height, width, max_voxels)
        with np.load(path, allow_pickle=False) as archive:
            frames_key = key[: -len(".npy")]
            source = archive[frames_key]
            rgb_stored = archive["rgb"] if "rgb" in archive.files and frames_key == "frames" else None
            fps = _finite_positive(archive["fps"]) if "fps" in archive.files else None
            spacing = archive["spacing_mm"] if "spacing_mm" in archive.files else None
    except LungUSError:
        raise
    except Exception as error:  # noqa: BLE001 - zipfile/numpy raise many types for broken archives
        raise LungUSError(f"truncated or corrupt .npz file ({error_detail(error)})", path) from error
    grey, rgb, rescaled = _frames_from_array(source, path, max_voxels)
    if rgb_stored is not None:
        # Written by write_npz: the colour frames are stored as they were kept.
        if rgb_stored.dtype != np.uint8 or rgb_stored.shape != grey.shape + (3,):
            raise LungUSError(
                f"'rgb' array {rgb_stored.shape} {rgb_stored.dtype} does not match 'frames'", path
            )
        rgb = rgb_stored
    spacing_mm = None
    if spacing is not None and np.size(spacing) == 2 and np.all(np.isfinite(spacing)) and np.all(spacing > 0):
        spacing_mm = (float(spacing[0]), float(spacing[1]))
    meta = {"format": "npz", "array": frames_key}
    if rescaled:
        meta["intensity_rescaled"] = True
    return Clip(grey, fps=fps, spacing_mm=spacing_mm, source=path, meta=meta, rgb=rgb)


def _finite_positive(value) -> float | None:
    try:
        number = float(np.asarray(value).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def write_npy(clip: Clip, path: Path) -> Path:
    """The grey frames only (T, H, W) uint8; fps, spacing and colour need .npz."""
    with atomic_path(path, suffix=".npy") as temporary:
        with open(temporary, "wb") as handle:
            np.save(handle, clip.frames, allow_pickle=False)
    return path


def write_npz(clip: Clip, path: Path, compression: str | None = None) -> Path:
    """``frames`` (T, H, W) uint8, ``fps`` and ``spacing_mm`` (NaN when unknown), ``rgb`` if kept."""
    arrays = {
        "frames": clip.frames,
        "fps": np.array(clip.fps if clip.fps else math.nan),
        "spacing_mm": np.array(clip.spacing_mm if clip.spacing_mm else (math.nan, math.nan)),
    }
    if clip.rgb is not None:
        arrays["rgb"] = clip.rgb
    save = np.savez_compressed if compression in ("gzip", "zip", "deflate") else np.savez
    with atomic_path(path, suffix=".npz") as temporary:
        with open(temporary, "wb") as handle:
            save(handle, **arrays)
    return path


# --------------------------------------------------------------------------- frame folders


def frame_files(folder: Path) -> list[Path]:
    """Image files in ``folder`` in natural order (frame2 before frame10).

    Beside frame images, any entry that is not a regular file (a subfolder, a FIFO, a
    socket, a device) is refused rather than skipped unseen: it is no frame, and opening
    a FIFO would hang. Hidden entries and other files (sidecar JSON) are ignored.
    """
    files: list[Path] = []
    odd: list[Path] = []
    try:
        for entry in folder.iterdir():
            if entry.name.startswith("."):
                continue
            if not entry.is_file():
                odd.append(entry)
            elif entry.suffix.lower() in IMAGE_SUFFIXES:
                files.append(entry)
    except OSError as error:
        raise LungUSError(os_problem(error, "list the frame folder"), folder) from error
    if files and odd:
        entry = min(odd, key=lambda item: natural_key(item.name))
        kind = "a folder" if entry.is_dir() else "not a regular file (a FIFO, socket or device)"
        raise LungUSError(
            f"a frame folder holds only frame images, but {entry.name!r} is {kind} "
            f"({len(odd)} such entr{'y' if len(odd) == 1 else 'ies'}); move them out",
            folder,
        )
    return sorted(files, key=lambda entry: natural_key(entry.name))


def read_frame_folder(path: Path, max_voxels: int) -> Clip:
    from lungus.io.video import PILLOW_DECODE_ERRORS, open_image, pillow_frame

    files = frame_files(path)
    if not files:
        raise LungUSError(
            f"the folder holds no frame images ({' '.join(IMAGE_SUFFIXES)}) and is not a clip", path
        )
    accumulator = FrameAccumulator(path, max_voxels, expected_frames=len(files))
    for index, file in enumerate(files):
        with open_image(file) as image:
            try:
                if index == 0:
                    width, height = image.size
                    check_voxels(path, len(files), height, width, max_voxels)
                frame = pillow_frame(image)
            except PILLOW_DECODE_ERRORS as error:
                raise LungUSError(f"frame image cannot be read ({error_detail(error)})", file) from error
        try:
            accumulator.add(frame)
        except LungUSError as error:
            raise LungUSError(error.problem, file) from error
    grey, rgb = accumulator.finish()
    fps, spacing = _read_sidecar(path / FRAME_FOLDER_SIDECAR)
    meta = {"format": "frames", "first_frame": files[0].name, "last_frame": files[-1].name}
    return Clip(grey, fps=fps, spacing_mm=spacing, source=path, meta=meta, rgb=rgb)


def _read_sidecar(sidecar: Path) -> tuple[float | None, tuple[float, float] | None]:
    if not sidecar.is_file():
        return None, None
    try:
        record = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as error:
        raise LungUSError(f"unreadable clip sidecar ({error_detail(error)})", sidecar) from error
    if not isinstance(record, dict):
        raise LungUSError(
            f"the clip sidecar holds a JSON {json_type_name(record)}, not an object like "
            f'{{"fps": 25, "spacing_mm": [0.3, 0.3]}}',
            sidecar,
        )
    fps = _finite_positive(record.get("fps")) if record.get("fps") is not None else None
    spacing = record.get("spacing_mm")
    if isinstance(spacing, list) and len(spacing) == 2 and all(_finite_positive(value) for value in spacing):
        return fps, (float(spacing[0]), float(spacing[1]))
    return fps, None


@contextlib.contextmanager
def atomic_folder(path: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``path``; on success it takes ``path``'s place.

    An existing folder at ``path`` is moved aside first and removed only after the new
    one is in place, so a failure leaves the old folder untouched.
    """
    if path.exists() and not path.is_dir():
        raise LungUSError("exists and is not a folder; cannot write frames there", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield temporary
        os.chmod(temporary, 0o755)  # mkdtemp makes it private (0700)
        if path.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, retired / path.name)
            os.replace(temporary, path)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(temporary, path)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)


def write_frame_folder(clip: Clip, path: Path) -> Path:
    """PNG frames named frame_0000.png ... plus a small JSON sidecar with fps and spacing."""
    import cv2

    digits = max(4, len(str(clip.n_frames - 1)))
    with atomic_folder(path) as temporary:
        for index in range(clip.n_frames):
            image = (
                cv2.cvtColor(clip.rgb[index], cv2.COLOR_RGB2BGR)
                if clip.rgb is not None
                else clip.frames[index]
            )
            target = temporary / f"frame_{index:0{digits}d}.png"
            if not cv2.imwrite(os.fspath(target), image):
                raise LungUSError(f"could not write frame {index}", target)
        sidecar = {"fps": clip.fps, "spacing_mm": None if clip.spacing_mm is None else list(clip.spacing_mm)}
        (temporary / FRAME_FOLDER_SIDECAR).write_text(json.dumps(sidecar) + "\n", encoding="utf-8")
    return path
