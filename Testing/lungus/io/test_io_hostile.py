"""Hostile and careless input to the clip readers (issue 16): each reader refuses it with one
LungUSError line naming the file, never a crash, a traceback or a hang.

Crashes (SIGSEGV) and hangs are tried in a child process with a time limit, so a regression
fails its test instead of taking the test run down with it.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import lungus
from lungus.errors import LungUSError
from lungus.io import Clip, read_clip, write_clip

NON_UTF8_NAME = b"clip\xff.mp4"
ENGINE = Path(lungus.__file__).resolve().parents[1]  # the engine under test, for child processes


def run_python(code: str, *args: str | bytes, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -c code args`` with this engine on the path; stdout and stderr as bytes."""
    environment = dict(
        os.environ, PYTHONPATH=os.pathsep.join([os.fspath(ENGINE), os.environ.get("PYTHONPATH", "")])
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, timeout=timeout, env=environment
    )


def run_cli(*args: str | bytes, timeout: float = 120) -> subprocess.CompletedProcess:
    return run_python(
        "import sys; from lungus.cli import main; sys.exit(main(sys.argv[1:]))", *args, timeout=timeout
    )


def error_lines(result: subprocess.CompletedProcess) -> list[bytes]:
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.fixture
def small_frames(make_fan_frames):
    frames, _ = make_fan_frames("convex", n_frames=4)
    return frames


# --------------------------------------------------------------------------- file names


@pytest.fixture
def non_utf8_video(tmp_path, small_frames, write_test_video) -> bytes:
    if sys.platform != "linux":
        pytest.skip("file names that are not UTF-8 are a Linux (POSIX) matter")
    written = write_test_video(tmp_path / "clip.mp4", small_frames)
    target = os.fsencode(tmp_path) + b"/" + NON_UTF8_NAME
    os.rename(os.fsencode(written), target)
    return target


def test_a_video_whose_name_is_not_utf8_is_read_from_bytes_and_str_paths(non_utf8_video):
    code = (
        "import os, sys; from lungus.io import read_clip\n"
        "name = os.fsencode(sys.argv[1])\n"
        "print(read_clip(name, fan=False).n_frames, read_clip(os.fsdecode(name), fan=False).n_frames)"
    )
    result = run_python(code, non_utf8_video)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-400:]  # -11: SIGSEGV
    assert result.stdout.split() == [b"4", b"4"]


def test_cli_info_reads_a_video_whose_name_is_not_utf8(non_utf8_video):
    result = run_cli("info", non_utf8_video)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-400:]
    assert b"frames    4" in result.stdout


def test_a_newline_in_a_file_name_does_not_split_the_error_line(tmp_path):
    bad = tmp_path / "two\nlines.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    with pytest.raises(LungUSError) as caught:
        read_clip(bad)
    message = str(caught.value)
    assert "\n" not in message and "two\\nlines.mp4" in message


# --------------------------------------------------------------------------- NRRD


@pytest.fixture
def nrrd_parts(tmp_path, small_frames) -> tuple[list[bytes], bytes]:
    """(header lines, raw data) of a plain NRRD written by lungus."""
    raw = write_clip(Clip(small_frames, fps=25.0), tmp_path / "source.nrrd").read_bytes()
    header, _, data = raw.partition(b"\n\n")
    return header.split(b"\n"), data


def write_nrrd(path: Path, lines: list[bytes], data: bytes) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n\n" + data)
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda line: None if line.startswith(b"sizes:") else line, "no 'sizes' field"),
        (lambda line: None if line.startswith(b"dimension:") else line, "no 'dimension' field"),
        (
            lambda line: b"sizes: 240 180" if line.startswith(b"sizes:") else line,
            "lists 2 sizes for dimension 3",
        ),
        (lambda line: b"kinds: domain domain" if line.startswith(b"kinds:") else line, "lists 2 kinds"),
    ],
    ids=["no-sizes", "no-dimension", "sizes-short", "kinds-short"],
)
def test_nrrd_headers_missing_or_disagreeing_fields_are_refused(tmp_path, nrrd_parts, change, message):
    lines, data = nrrd_parts
    changed = [new for new in (change(line) for line in lines) if new is not None]
    path = write_nrrd(tmp_path / "bad.nrrd", changed, data)
    with pytest.raises(LungUSError, match=message):
        read_clip(path, fan=False)


def test_nrrd_with_a_huge_line_skip_is_refused_at_once(tmp_path, nrrd_parts):
    lines, data = nrrd_parts
    path = write_nrrd(tmp_path / "skip.nrrd", [*lines, b"line skip: 99999999999"], data)
    code = "import sys; from lungus.io import read_clip; read_clip(sys.argv[1], fan=False)"
    result = run_python(code, os.fspath(path), timeout=60)  # pynrrd alone reads empty lines forever
    assert b"LungUSError" in result.stderr and b"line skip 99999999999 is beyond the end" in result.stderr


def test_detached_nrrd_whose_data_file_is_a_fifo_is_refused_at_once(tmp_path, nrrd_parts):
    lines, _ = nrrd_parts
    os.mkfifo(tmp_path / "frames.raw")
    header = [line for line in lines if not line.startswith(b"encoding")]
    (tmp_path / "clip.nhdr").write_bytes(
        b"\n".join([*header, b"encoding: raw", b"data file: frames.raw"]) + b"\n"
    )
    code = "import sys; from lungus.io import read_clip; read_clip(sys.argv[1], fan=False)"
    result = run_python(code, os.fspath(tmp_path / "clip.nhdr"), timeout=60)  # opening a FIFO blocks
    assert b"LungUSError" in result.stderr and b"'frames.raw' is not a regular file" in result.stderr


# --------------------------------------------------------------------------- DICOM

EXPLICIT_LITTLE = b"1.2.840.10008.1.2.1\x00"


def test_dicom_with_an_unknown_transfer_syntax_is_refused(tmp_path, small_frames, write_test_dicom):
    data = write_test_dicom(tmp_path / "clip.dcm", small_frames).read_bytes()
    assert data.count(EXPLICIT_LITTLE) == 1
    path = tmp_path / "unknown_syntax.dcm"
    path.write_bytes(data.replace(EXPLICIT_LITTLE, b"1.2.840.99999.9.9.9\x00"))  # same length
    with pytest.raises(LungUSError, match="unknown DICOM transfer syntax UID '1.2.840.99999.9.9.9'"):
        read_clip(path, fan=False)


def test_dicom_with_an_unknown_vr_in_the_rate_is_read_without_a_rate(
    tmp_path, small_frames, write_test_dicom
):
    import pydicom

    from lungus.io.dicom import dicom_fps

    data = write_test_dicom(tmp_path / "clip.dcm", small_frames, fps_tag="CineRate").read_bytes()
    cine_rate = b"\x18\x00\x40\x00IS"  # (0018,0040) CineRate, explicit VR
    assert data.count(cine_rate) == 1
    path = tmp_path / "unknown_vr.dcm"
    path.write_bytes(data.replace(cine_rate, b"\x18\x00\x40\x00ZZ"))
    assert dicom_fps(pydicom.dcmread(path)) is None
    clip = read_clip(path, fan=False)
    assert clip.n_frames == 4 and clip.fps is None


# --------------------------------------------------------------------------- npz, GIF, images


def test_npz_with_an_unsupported_zip_version_is_refused(tmp_path, small_frames):
    data = bytearray(write_clip(Clip(small_frames, fps=25.0), tmp_path / "clip.npz").read_bytes())
    for signature, offset in ((b"PK\x03\x04", 4), (b"PK\x01\x02", 6)):  # version needed to extract
        start = data.find(signature)
        while start >= 0:
            data[start + offset] = 99
            start = data.find(signature, start + 4)
    path = tmp_path / "zip99.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(LungUSError, match="zip file version 9.9"):
        read_clip(path, fan=False)


def test_truncated_gifs_that_break_pillow_are_refused(tmp_path, small_frames):
    from PIL import Image

    data = write_clip(Clip(small_frames, fps=25.0), tmp_path / "clip.gif").read_bytes()
    breaking = []  # lengths at which Pillow itself raises IndexError while counting frames
    for length in range(64, len(data), 97):
        (tmp_path / "cut.gif").write_bytes(data[:length])
        try:
            with Image.open(tmp_path / "cut.gif") as image:
                image.n_frames  # noqa: B018 - counting seeks through the file
        except IndexError:
            breaking.append(length)
        except Exception:  # noqa: BLE001, S110 - other damage Pillow reports properly
            pass
    assert breaking, "no truncation found that makes Pillow raise IndexError"
    for length in breaking[:3]:
        path = tmp_path / f"cut{length}.gif"
        path.write_bytes(data[:length])
        with pytest.raises(LungUSError, match="truncated or corrupt"):
            read_clip(path, fan=False)


def bomb_png(path: Path, side: int = 20000) -> Path:
    """A tiny PNG whose header claims side x side grey pixels (past Pillow's bomb limit)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )
    return path


def test_a_decompression_bomb_png_in_a_frame_folder_is_refused(tmp_path, small_frames):
    folder = write_clip(Clip(small_frames, fps=25.0), tmp_path / "frames")
    bomb_png(folder / "frame_0000.png")
    with pytest.raises(LungUSError, match="too large to decode safely") as caught:
        read_clip(folder, fan=False)
    assert "frame_0000.png" in str(caught.value)


# --------------------------------------------------------------------------- frame folders and JSON


@pytest.mark.parametrize("content", [[1, 2], "25 fps", None], ids=["list", "string", "null"])
def test_a_frame_folder_sidecar_that_is_not_an_object_is_refused(tmp_path, small_frames, content):
    folder = write_clip(Clip(small_frames, fps=25.0), tmp_path / "frames")
    (folder / "lungus_clip.json").write_text(json.dumps(content))
    with pytest.raises(LungUSError, match="the clip sidecar holds a JSON (array|string|null), not an object"):
        read_clip(folder, fan=False)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_in_a_frame_folder_is_refused_not_skipped(tmp_path, small_frames):
    folder = write_clip(Clip(small_frames, fps=25.0), tmp_path / "frames")
    os.mkfifo(folder / "frame_0004.png")
    with pytest.raises(LungUSError, match="'frame_0004.png' is not a regular file"):
        read_clip(folder, fan=False)


def test_a_subfolder_in_a_frame_folder_is_refused_not_skipped(tmp_path, small_frames):
    folder = write_clip(Clip(small_frames, fps=25.0), tmp_path / "frames")
    (folder / "more").mkdir()
    with pytest.raises(LungUSError, match="'more' is a folder"):
        read_clip(folder, fan=False)


FAN_JSON = {
    "mask_type": "fan",
    "angle1": 120.0,
    "angle2": 60.0,
    "center_rows_px": -20.0,
    "center_cols_px": 120.0,
    "radius1": 30.0,
    "radius2": 190.0,
    "image_size_rows": 180,
    "image_size_cols": 240,
}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("radius2", True, "'radius2' is a JSON boolean, not a number"),
        ("center_rows_px", float("nan"), "'center_rows_px' is nan, not a finite number"),
        ("angle1", float("inf"), "'angle1' is inf, not a finite number"),
        ("image_size_rows", float("nan"), "'image_size_rows' is nan"),
        ("image_size_cols", [240], "'image_size_cols' is a JSON array"),
    ],
)
def test_fan_json_numbers_that_are_not_finite_numbers_are_refused(
    tmp_path, small_frames, write_test_video, key, value, message
):
    clip = write_test_video(tmp_path / "clip.mp4", small_frames)
    (tmp_path / "clip.json").write_text(json.dumps({**FAN_JSON, key: value}))  # json writes NaN, Infinity
    with pytest.raises(LungUSError, match=message):
        read_clip(clip)


# --------------------------------------------------------------------------- videos and OpenCV


def truncated_avi(path: Path, frames: np.ndarray, keep: int, write_test_video) -> Path:
    """An MJPG AVI cut after ``keep`` frame chunks: its header still lists every frame."""
    data = write_test_video(path.with_name("whole.avi"), frames, fourcc="MJPG").read_bytes()
    movie_end = data.find(b"idx1")
    chunks = [index for index in range(movie_end) if data[index : index + 4] == b"00dc"]
    path.write_bytes(data[: chunks[-(len(frames) - keep)]])
    return path


def test_a_video_with_a_few_listed_frames_missing_is_read_with_a_warning(
    tmp_path, make_fan_frames, write_test_video, capsys
):
    frames, _ = make_fan_frames("convex", n_frames=40)
    path = truncated_avi(tmp_path / "short.avi", frames, 37, write_test_video)
    clip = read_clip(path, fan=False)
    decoded = clip.n_frames
    assert 36 <= decoded <= 37
    assert clip.meta["frames_decoded_of_listed"] == [decoded, 40]
    warning = capsys.readouterr().err.strip()
    assert warning == f"warning: {path}: read the {decoded} of the 40 frames the container lists that decode"


def test_a_video_missing_many_listed_frames_is_still_refused(tmp_path, make_fan_frames, write_test_video):
    frames, _ = make_fan_frames("convex", n_frames=40)
    path = truncated_avi(tmp_path / "half.avi", frames, 20, write_test_video)
    with pytest.raises(LungUSError, match="truncated or corrupt video: decoded (19|20) of the 40 frames"):
        read_clip(path, fan=False)


def test_cli_error_for_a_broken_avi_is_one_line_without_opencv_noise(
    tmp_path, small_frames, write_test_video
):
    data = write_test_video(tmp_path / "clip.avi", small_frames, fourcc="MJPG").read_bytes()
    (tmp_path / "broken.avi").write_bytes(data[:3000])  # OpenCV's own AVI parser prints here
    result = run_cli("info", os.fspath(tmp_path / "broken.avi"))
    assert result.returncode == 2
    assert len(error_lines(result)) == 1, result.stderr
    assert error_lines(result)[0].startswith(b"lungus info: error: ")


# --------------------------------------------------------------------------- permissions


def test_os_errors_are_said_as_such_not_as_corrupt_files():
    from lungus.errors import os_problem

    denied = PermissionError(13, "Permission denied", "/data/clip.mp4")
    assert os_problem(denied) == "cannot read it (Permission denied)"
    assert os_problem(denied, "list the frame folder") == "cannot list the frame folder (Permission denied)"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_clip_is_reported_as_unreadable(tmp_path, small_frames):
    path = write_clip(Clip(small_frames, fps=25.0), tmp_path / "clip.npy")
    path.chmod(0)
    with pytest.raises(LungUSError, match=r"cannot read it \(Permission denied\)"):
        read_clip(path, fan=False)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads folders whatever their mode")
def test_an_unreadable_frame_folder_is_reported_as_unreadable(tmp_path, small_frames):
    folder = write_clip(Clip(small_frames, fps=25.0), tmp_path / "frames")
    folder.chmod(0)
    try:
        with pytest.raises(LungUSError, match=r"Permission denied"):
            read_clip(folder, fan=False)
    finally:
        folder.chmod(0o755)


def test_a_damaged_jpeg_baseline_frame_is_refused_not_decoded_forever(tmp_path):
    """Fuzz finding (dicom #5839, seed 0): two bytes changed in one frame of a JPEG DICOM. Pillow
    refuses the frame; pydicom then handed it to pylibjpeg, whose libjpeg looped forever."""
    import pydicom
    import pydicom.encaps

    frames = np.random.default_rng(0).integers(0, 255, size=(4, 48, 64), dtype=np.uint8)
    path = write_clip(Clip(frames=frames, fps=20.0), tmp_path / "scan.dcm", compression="jpeg")
    data = path.read_bytes()
    pixel_data = pydicom.dcmread(path).PixelData
    if hasattr(pydicom.encaps, "generate_frames"):  # pydicom 3
        fragment = list(pydicom.encaps.generate_frames(pixel_data, number_of_frames=4))[2]
    else:  # pydicom 2.4 (Slicer 5.10)
        fragment = list(pydicom.encaps.generate_pixel_data_frame(pixel_data, 4))[2]
    damaged = bytearray(fragment)
    damaged[95], damaged[97] = 0x00, 0x80
    assert data.count(fragment) == 1
    path.write_bytes(data.replace(fragment, bytes(damaged)))
    code = "import sys; from lungus.io import read_clip; read_clip(sys.argv[1], fan=False)"
    result = run_python(code, os.fspath(path), timeout=120)  # TimeoutExpired here is the bug
    assert result.returncode == 1 and b"LungUSError" in result.stderr
    assert b"cannot decode the DICOM pixel data" in result.stderr
