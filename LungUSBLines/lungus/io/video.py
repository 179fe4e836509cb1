"""Video files (OpenCV/FFmpeg) and what OpenCV cannot decode (GIF, still images: Pillow)."""

from __future__ import annotations

import contextlib
import math
import os
import struct
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from lungus.atomic import atomic_path, require_room
from lungus.errors import LungUSError, error_detail, os_problem, warn
from lungus.io.clip import Clip
from lungus.io.formats import check_voxels
from lungus.io.pixels import FrameAccumulator, to_uint8

#: Containers that index every frame: there, fewer decoded frames than listed means a
#: truncated file. MPEG streams only estimate their frame count, so they are not checked.
_INDEXED_CONTAINERS = (".mp4", ".m4v", ".mov", ".avi")
#: In those containers, a clip is read (with a warning) when at least this fraction of the
#: listed frames decode: real POCUS exports list a few frames more than they hold (192 of 210).
MIN_DECODED_FRACTION = 0.9
#: Frame rate written when a clip does not know its own (containers need one).
DEFAULT_WRITE_FPS = 25.0
#: OpenCV writers that work with the FFmpeg in opencv-python-headless ('avc1'/H.264 do not).
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG"}


def _plausible_fps(value: float | None) -> float | None:
    if value is None or not math.isfinite(value) or value <= 0 or value > 1000:
        return None
    return float(value)


def read_video(path: Path, max_voxels: int) -> Clip:
    """Decode a video with OpenCV, falling back to Pillow when OpenCV cannot open it."""
    _quiet_opencv()
    with _openable_name(path) as name:  # the link (if any) lives until the last frame is read
        capture = cv2.VideoCapture(name, _backend())
        try:
            if not capture.isOpened():
                return _read_with_pillow_or_fail(path, max_voxels, "OpenCV cannot open it")
            listed = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
            height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
            fps = _plausible_fps(capture.get(cv2.CAP_PROP_FPS))
            if width > 0 and height > 0:
                check_voxels(path, max(listed, 1), height, width, max_voxels)
            accumulator = FrameAccumulator(path, max_voxels, expected_frames=listed, bgr=True)
            while True:
                ok, frame = capture.read()
                if not ok or frame is None:
                    break
                accumulator.add(frame)
        finally:
            capture.release()
    if accumulator.n_frames == 0:
        return _read_with_pillow_or_fail(path, max_voxels, "no frame could be decoded")
    suffix = path.suffix.lower()
    meta = {"format": "video", "container": suffix.lstrip(".") or "unknown", "frames_listed": listed}
    if suffix in _INDEXED_CONTAINERS and listed > 0:
        _check_frames_decoded(path, accumulator.n_frames, listed, meta)
    grey, rgb = accumulator.finish()
    return Clip(grey, fps=fps, source=path, meta=meta, rgb=rgb)


def _check_frames_decoded(path: Path, decoded: int, listed: int, meta: dict) -> None:
    """Refuse a video missing many of its listed frames; warn (and note in meta) for a few."""
    missing = listed - decoded
    if missing <= max(2, 0.02 * listed):
        return
    if decoded < MIN_DECODED_FRACTION * listed:
        raise LungUSError(
            f"truncated or corrupt video: decoded {decoded} of the {listed} frames the container lists",
            path,
        )
    meta["frames_decoded_of_listed"] = [decoded, listed]
    warn(f"read the {decoded} of the {listed} frames the container lists that decode", path)


def _quiet_opencv() -> None:
    """Keep OpenCV's and FFmpeg's log lines off stderr: a bad clip gets one LungUSError line,
    not warnings before it. A user's own OPENCV_LOG_LEVEL / OPENCV_FFMPEG_LOGLEVEL wins."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    if "OPENCV_LOG_LEVEL" not in os.environ:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def _backend() -> int:
    """FFmpeg where OpenCV has it: letting OpenCV try its other backends on a file FFmpeg
    refuses only adds their messages on stderr (the built-in AVI parser prints with no
    way to silence it) before the same refusal."""
    return cv2.CAP_FFMPEG if cv2.videoio_registry.hasBackend(cv2.CAP_FFMPEG) else cv2.CAP_ANY


@contextlib.contextmanager
def _openable_name(path: Path) -> Iterator[str]:
    """A name of ``path`` that OpenCV can open.

    OpenCV converts the name to UTF-8 and crashes the process (SIGSEGV) on one that is
    not valid UTF-8 (on Linux, Python keeps such bytes as lone surrogates). Such a file is
    opened through a temporary symbolic link with a plain name instead.
    """
    name = os.fspath(path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        pass
    else:
        yield name
        return
    suffix = path.suffix if path.suffix.isascii() and path.suffix.isprintable() else ""
    with tempfile.TemporaryDirectory(prefix="lungus-clip-") as folder:
        link = os.path.join(folder, "clip" + suffix)
        try:
            os.symlink(os.path.abspath(name), link)
        except OSError as error:
            raise LungUSError(
                f"the file name is not valid UTF-8, which OpenCV cannot open; rename the file "
                f"({os_problem(error, 'link it under a plain name')})",
                path,
            ) from error
        yield link


def _read_with_pillow_or_fail(path: Path, max_voxels: int, why: str) -> Clip:
    try:
        return read_with_pillow(path, max_voxels)
    except LungUSError as error:
        if "Pillow cannot read" not in error.problem:
            raise
    raise LungUSError(f"cannot decode the video ({why}): the file is truncated, corrupt or not a video", path)


#: What Pillow's decoders raise on damaged files (a truncated GIF: IndexError; some
#: plugins: SyntaxError or struct.error), besides the OSError it documents.
PILLOW_DECODE_ERRORS = (OSError, ValueError, EOFError, IndexError, SyntaxError, struct.error)


def open_image(path: Path):
    """``PIL.Image.open(path)``, or LungUSError: unreadable, or past Pillow's decompression-bomb limit.

    Pillow's bomb warning (images above ~89 megapixels) is not printed: ``max_voxels``
    is the size limit here, and stderr stays free of multi-line noise.
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(path)
    except Image.DecompressionBombError as error:
        raise LungUSError(f"image too large to decode safely ({error_detail(error)})", path) from error
    except PILLOW_DECODE_ERRORS as error:
        raise LungUSError(f"Pillow cannot read it ({error_detail(error)})", path) from error


def read_with_pillow(path: Path, max_voxels: int, fmt: str = "video") -> Clip:
    """GIF, APNG, (multi-page) TIFF and single images, frame by frame, with frame timing."""
    image = open_image(path)
    with image:
        try:
            n_frames = int(getattr(image, "n_frames", 1) or 1)  # counting seeks through the file
        except PILLOW_DECODE_ERRORS as error:
            raise LungUSError(
                f"truncated or corrupt: its frames cannot be counted ({error_detail(error)})", path
            ) from error
        width, height = image.size
        check_voxels(path, n_frames, height, width, max_voxels)
        accumulator = FrameAccumulator(path, max_voxels, expected_frames=n_frames)
        durations_ms: list[float] = []
        try:
            for index in range(n_frames):
                image.seek(index)
                accumulator.add(pillow_frame(image))
                duration = image.info.get("duration")
                if duration:
                    durations_ms.append(float(duration))
        except PILLOW_DECODE_ERRORS as error:
            if accumulator.n_frames == 0:
                raise LungUSError(f"Pillow cannot read it ({error_detail(error)})", path) from error
            raise LungUSError(
                f"truncated or corrupt: frame {accumulator.n_frames} of {n_frames} cannot be decoded "
                f"({error_detail(error)})",
                path,
            ) from error
        image_format = (image.format or "").lower()
    grey, rgb = accumulator.finish()
    fps = _plausible_fps(1000.0 / float(np.median(durations_ms))) if durations_ms else None
    meta = {"format": "gif" if image_format == "gif" else fmt, "container": image_format or "unknown"}
    return Clip(grey, fps=fps, source=path, meta=meta, rgb=rgb)


def pillow_frame(image) -> np.ndarray:
    """The current frame of a Pillow image as uint8 grey (H, W) or RGB (H, W, 3)."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return (np.asarray(image, dtype=np.uint16) >> 8).astype(np.uint8)
    if mode in ("I", "F"):
        array, _ = to_uint8(np.asarray(image))
        return array
    if mode in ("L", "1", "LA"):
        return np.asarray(image.convert("L"))
    return np.asarray(image.convert("RGB"))


def _padded_even(frame: np.ndarray) -> np.ndarray:
    # The FFmpeg encoders here need even sizes (yuv420p) and would silently crop an odd
    # row or column; pad with black instead so no image content is lost.
    height, width = frame.shape[:2]
    pad_rows, pad_cols = height % 2, width % 2
    if not (pad_rows or pad_cols):
        return frame
    return cv2.copyMakeBorder(frame, 0, pad_rows, 0, pad_cols, cv2.BORDER_CONSTANT, value=0)


def write_video(clip: Clip, path: Path) -> Path:
    """mp4/m4v/mov ('mp4v') or avi (MJPG). Odd frame sizes are padded by one black row/column."""
    suffix = path.suffix.lower()
    codec = VIDEO_CODECS[suffix]
    fps = clip.fps or DEFAULT_WRITE_FPS
    height, width = clip.height + clip.height % 2, clip.width + clip.width % 2
    # Read when FFmpeg first starts: keeps the check below from printing "moov atom not found".
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    with atomic_path(path, suffix=suffix) as temporary:
        writer = cv2.VideoWriter(
            os.fspath(temporary), cv2.VideoWriter_fourcc(*codec), fps, (width, height), True
        )
        if not writer.isOpened():
            raise LungUSError(f"OpenCV cannot write {codec} video on this machine", path)
        # OpenCV drops write errors (a full disk) with a log line per frame: keep those off stderr
        # and check the file holds every frame instead.
        quiet = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            for index in range(clip.n_frames):
                if clip.rgb is not None:
                    bgr = cv2.cvtColor(clip.rgb[index], cv2.COLOR_RGB2BGR)
                else:
                    bgr = cv2.cvtColor(clip.frames[index], cv2.COLOR_GRAY2BGR)
                writer.write(_padded_even(bgr))
        finally:
            writer.release()
            cv2.utils.logging.setLogLevel(quiet)
        if not _whole_container(temporary):
            require_room(temporary, path)  # the usual cause; OutputWriteError naming the video
            raise LungUSError(f"OpenCV wrote an incomplete {codec} video", path)
    return path


def _whole_container(path: Path) -> bool:
    """Whether the top-level boxes (MP4/QuickTime) or RIFF chunks (AVI) end exactly at the end
    of the file: a write cut short, even by one byte, leaves the last one running past it."""
    riff = path.suffix.lower() == ".avi"
    size = path.stat().st_size
    position = 0
    with open(path, "rb") as handle:
        while position < size:
            handle.seek(position)
            header = handle.read(16)
            if len(header) < 8:
                return False
            if riff:  # RIFF/AVIX chunks: id, little-endian size, padded to an even length
                length = 8 + int.from_bytes(header[4:8], "little")
                length += length % 2
            else:  # MP4 boxes: big-endian size (1: 64-bit size follows), type
                length = int.from_bytes(header[:4], "big")
                if length == 1 and len(header) == 16:
                    length = int.from_bytes(header[8:16], "big")
                if length < 8:  # 0 ("to the end") too: the muxer sets every size when it finishes
                    return False
            position += length
    return position == size


def write_gif(clip: Clip, path: Path) -> Path:
    """Animated GIF through Pillow. GIF stores delays in 1/100 s, so fps is approximate,
    and Pillow merges identical consecutive frames into one longer frame."""
    from PIL import Image

    fps = clip.fps or DEFAULT_WRITE_FPS
    duration_ms = max(20, int(round(1000.0 / fps / 10.0)) * 10)
    if clip.rgb is not None:
        images = [Image.fromarray(frame, mode="RGB") for frame in clip.rgb]
    else:
        images = [Image.fromarray(frame, mode="L") for frame in clip.frames]
    with atomic_path(path, suffix=".gif") as temporary:
        images[0].save(
            temporary, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0
        )
    return path
