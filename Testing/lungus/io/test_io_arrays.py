"""NumPy files and folders of numbered frame images."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from lungus.errors import LungUSError
from lungus.io import Clip, read_clip, write_clip


def test_npy_round_trip(tmp_path, make_fan_frames):
    frames, _ = make_fan_frames("convex", n_frames=3)
    back = read_clip(write_clip(Clip(frames, fps=25.0), tmp_path / "clip.npy"), fan=False)
    assert np.array_equal(back.frames, frames) and back.fps is None


def test_npz_round_trip_keeps_fps_spacing_and_colour(tmp_path, make_fan_frames):
    frames, _ = make_fan_frames("convex", n_frames=3)
    rgb = np.repeat(frames[..., None], 3, axis=-1)
    for index in range(3):
        rgb[index, 50 + 8 * index : 70 + 8 * index, 90:120] = (20, 20, 230)
    clip = Clip(frames, fps=12.5, spacing_mm=(0.2, 0.3), rgb=rgb)
    back = read_clip(write_clip(clip, tmp_path / "clip.npz", compression="gzip"), fan=False)
    assert np.array_equal(back.frames, frames) and np.array_equal(back.rgb, rgb)
    assert back.fps == pytest.approx(12.5) and back.spacing_mm == pytest.approx((0.2, 0.3))


def test_float_array_in_unit_range_is_scaled(tmp_path):
    path = tmp_path / "float.npy"
    np.save(path, np.linspace(0, 1, 2 * 8 * 9, dtype=np.float32).reshape(2, 8, 9))
    clip = read_clip(path, fan=False)
    assert clip.frames.dtype == np.uint8 and clip.frames.max() == 255 and clip.frames.min() == 0


def test_2d_array_is_a_one_frame_clip(tmp_path):
    path = tmp_path / "still.npy"
    np.save(path, np.full((20, 30), 7, np.uint8))
    assert read_clip(path, fan=False).frames.shape == (1, 20, 30)


def test_zero_frame_array_is_refused(tmp_path):
    path = tmp_path / "empty.npy"
    np.save(path, np.zeros((0, 20, 30), np.uint8))
    with pytest.raises(LungUSError, match="no frames"):
        read_clip(path)


def test_array_of_wrong_shape_is_refused(tmp_path):
    path = tmp_path / "vector.npy"
    np.save(path, np.zeros(100, np.uint8))
    with pytest.raises(LungUSError, match="not a clip"):
        read_clip(path)


def test_absurd_npy_header_is_refused_without_reading(tmp_path):
    path = tmp_path / "huge.npy"
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "|u1", "fortran_order": False, "shape": (5000, 4000, 4000)}
        )
    with pytest.raises(LungUSError, match="max_voxels"):
        read_clip(path)


def test_max_voxels_is_a_parameter(tmp_path, make_fan_frames):
    frames, _ = make_fan_frames("convex", n_frames=3)
    path = write_clip(Clip(frames), tmp_path / "clip.npy")
    with pytest.raises(LungUSError, match="max_voxels=1,000"):
        read_clip(path, max_voxels=1000)
    with pytest.raises(ValueError, match="positive integer"):
        read_clip(path, max_voxels=0)


def test_truncated_npy_is_refused(tmp_path, make_fan_frames):
    frames, _ = make_fan_frames("convex", n_frames=3)
    path = write_clip(Clip(frames), tmp_path / "cut.npy")
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(LungUSError, match="truncated or corrupt"):
        read_clip(path)


def test_frame_folder_reads_in_natural_order(tmp_path, make_fan_frames):
    frames, _ = make_fan_frames("convex", n_frames=12, overlays=False)
    folder = tmp_path / "frames"
    folder.mkdir()
    for index, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"frame{index + 1}.png"), frame)  # frame1 .. frame12, unpadded
    (folder / "notes.txt").write_text("not a frame")
    clip = read_clip(folder, fan=False)
    assert np.array_equal(clip.frames, frames)  # frame2 came before frame10
    assert clip.meta["first_frame"] == "frame1.png" and clip.meta["last_frame"] == "frame12.png"


def test_frame_folder_round_trip_keeps_fps_and_spacing(tmp_path, make_fan_frames):
    frames, _ = make_fan_frames("phased", n_frames=11)
    folder = write_clip(Clip(frames, fps=30.0, spacing_mm=(0.25, 0.25)), tmp_path / "out_frames")
    names = sorted(path.name for path in folder.glob("*.png"))
    assert names[0] == "frame_0000.png" and names[-1] == "frame_0010.png"
    assert json.loads((folder / "lungus_clip.json").read_text())["fps"] == 30.0
    back = read_clip(folder, fan=False)
    assert np.array_equal(back.frames, frames)
    assert back.fps == 30.0 and back.spacing_mm == (0.25, 0.25)


def test_rewriting_a_frame_folder_replaces_it(tmp_path, make_fan_frames):
    frames, _ = make_fan_frames("convex", n_frames=5)
    folder = write_clip(Clip(frames), tmp_path / "out")
    write_clip(Clip(frames[:2]), folder)
    assert len(list(folder.glob("*.png"))) == 2
    assert [path.name for path in tmp_path.iterdir()] == ["out"]  # no temporary folders left


def test_frame_folder_with_mixed_sizes_names_the_frame(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    cv2.imwrite(str(folder / "a1.png"), np.zeros((10, 10), np.uint8))
    cv2.imwrite(str(folder / "a2.png"), np.zeros((12, 10), np.uint8))
    with pytest.raises(LungUSError, match="a2.png: frame 1 is 12x10 pixels but frame 0 is 10x10"):
        read_clip(folder)


def test_folder_without_images_is_refused(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "readme.txt").write_text("hello")
    with pytest.raises(LungUSError, match="no frame images"):
        read_clip(folder)


def test_single_png_is_a_one_frame_clip(tmp_path, make_fan_frames):
    frames, _ = make_fan_frames("convex", n_frames=1)
    path = tmp_path / "still.png"
    cv2.imwrite(str(path), frames[0])
    clip = read_clip(path)
    assert np.array_equal(clip.frames, frames) and clip.fan is not None
