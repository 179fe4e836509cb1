"""Recognising clips by content and suffix, finding them in folders, and refusing non-clips."""

from __future__ import annotations

import os

import numpy as np
import pytest

from lungus.errors import LungUSError
from lungus.io import (
    CLIP_SUFFIXES,
    Clip,
    clip_format,
    find_clips,
    looks_like_clip,
    natural_key,
    read_clip,
    write_clip,
)


def test_natural_order_puts_frame2_before_frame10():
    names = ["frame10.png", "frame2.png", "frame1.png", "Frame3.png"]
    assert sorted(names, key=natural_key) == ["frame1.png", "frame2.png", "Frame3.png", "frame10.png"]


@pytest.mark.parametrize(
    ("suffix", "expected"),
    [(".seq.nrrd", "nrrd"), (".dcm", "dicom"), (".npz", "npz"), (".mp4", "video"), (".gif", "gif")],
)
def test_content_without_suffix_is_recognised(tmp_path, make_fan_frames, suffix, expected):
    frames, _ = make_fan_frames("convex", n_frames=3)
    written = write_clip(Clip(frames, fps=25.0), tmp_path / f"clip{suffix}")
    bare = written.rename(tmp_path / "clip_without_suffix")
    assert clip_format(bare) == expected
    assert looks_like_clip(bare)
    assert read_clip(bare, fan=False).n_frames == 3


def test_content_wins_over_a_wrong_suffix(tmp_path, make_fan_frames):
    frames, _ = make_fan_frames("convex", n_frames=2)
    written = write_clip(Clip(frames), tmp_path / "clip.seq.nrrd")
    misnamed = written.rename(tmp_path / "clip.mp4")
    assert read_clip(misnamed, fan=False).meta["format"] == "nrrd"


def test_find_clips_searches_recursively_and_skips_non_clips(tmp_path, make_fan_frames):
    frames, _ = make_fan_frames("convex", n_frames=2)
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    expected = [
        write_clip(Clip(frames), tmp_path / "a" / "clip2.npy"),
        write_clip(Clip(frames), tmp_path / "a" / "clip10.dcm"),
        write_clip(Clip(frames, fps=25.0), tmp_path / "a" / "b" / "deep.mp4"),
    ]
    bare = write_clip(Clip(frames), tmp_path / "x.seq.nrrd").rename(tmp_path / "1.2.3.4")
    write_clip(Clip(frames), tmp_path / ".hidden" / "skip.npy")
    write_clip(Clip(frames), tmp_path / "a" / "frames")  # a frame folder: its PNGs are not clips
    (tmp_path / "a" / "clip2.json").write_text("{}")
    (tmp_path / "notes.csv").write_text("clip,patient\n")
    found = find_clips(tmp_path)
    assert sorted(map(os.fspath, found)) == sorted(map(os.fspath, expected + [bare]))
    assert found.index(expected[0]) < found.index(expected[1])  # clip2 before clip10


def test_clip_suffixes_cover_the_formats():
    for suffix in (
        ".mp4",
        ".avi",
        ".mov",
        ".mpeg",
        ".mpg",
        ".wmv",
        ".gif",
        ".m4v",
        ".dcm",
        ".nrrd",
        ".npy",
        ".npz",
    ):
        assert suffix in CLIP_SUFFIXES


def test_missing_file_is_named(tmp_path):
    with pytest.raises(LungUSError) as caught:
        read_clip(tmp_path / "nowhere.mp4")
    assert str(caught.value) == f"{tmp_path / 'nowhere.mp4'}: no such file or folder"


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.dcm"
    path.touch()
    with pytest.raises(LungUSError, match=r"empty \(0 bytes\)"):
        read_clip(path)


@pytest.mark.parametrize("name", ["notes.txt", "table.csv", "noise"])
def test_non_image_file_is_refused(tmp_path, name):
    path = tmp_path / name
    path.write_text("clip,patient,zone\nsome,text,here\n")
    with pytest.raises(LungUSError, match="not a clip") as caught:
        read_clip(path)
    assert "\n" not in str(caught.value)


def test_non_image_zip_is_refused(tmp_path):
    import zipfile

    path = tmp_path / "archive.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(LungUSError, match="not a clip"):
        read_clip(path)


def test_corrupt_png_is_refused(tmp_path):
    path = tmp_path / "frame.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(LungUSError, match="cannot read"):
        read_clip(path)


def test_every_error_is_one_line(tmp_path):
    path = tmp_path / "multi.npy"
    np.save(path, np.zeros((2, 3, 4, 5, 6), np.uint8))
    with pytest.raises(LungUSError) as caught:
        read_clip(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)
