"""Video files written by cv2.VideoWriter (and GIFs by Pillow), read back by lungus."""

from __future__ import annotations

import numpy as np
import pytest

from lungus.errors import LungUSError
from lungus.io import Clip, read_clip, write_clip

# (suffix, fourcc) pairs that this machine's OpenCV/FFmpeg writes and reads.
CONTAINERS = [
    (".mp4", "mp4v"),
    (".avi", "MJPG"),
    (".mov", "mp4v"),
    (".m4v", "mp4v"),
    (".wmv", "WMV2"),
    (".mpg", "mpg1"),
]


@pytest.mark.parametrize(("suffix", "fourcc"), CONTAINERS)
def test_video_containers_read_frames_and_fps(tmp_path, make_fan_frames, write_test_video, suffix, fourcc):
    frames, _ = make_fan_frames("convex", n_frames=6)
    path = write_test_video(tmp_path / f"clip{suffix}", frames, fps=25.0, fourcc=fourcc)
    clip = read_clip(path, fan=False)
    assert clip.frames.shape == frames.shape
    assert clip.fps == pytest.approx(25.0)
    assert clip.rgb is None
    assert np.abs(clip.frames.astype(int) - frames).mean() < 8.0  # lossy codecs


def test_video_without_suffix_is_recognised_by_content(tmp_path, make_fan_frames, write_test_video):
    frames, _ = make_fan_frames("convex", n_frames=4)
    path = write_test_video(tmp_path / "clip.mp4", frames)
    bare = path.rename(tmp_path / "export_0001")
    assert read_clip(bare, fan=False).n_frames == 4


def test_colour_video_keeps_doppler_colour(tmp_path, make_fan_frames, write_test_video):
    frames, _ = make_fan_frames("convex", n_frames=5)
    rgb = np.repeat(frames[..., None], 3, axis=-1)
    for index in range(len(rgb)):
        rgb[index, 70 + 5 * index : 90 + 5 * index, 100:140] = (230, 20, 20)
    clip = read_clip(write_test_video(tmp_path / "doppler.avi", rgb, fourcc="MJPG"), fan=False)
    assert clip.rgb is not None
    assert clip.rgb[2, 85, 120, 0] > 150 and clip.rgb[2, 85, 120, 2] < 100


def test_gif_reads_frames_and_fps_through_pillow(tmp_path, make_fan_frames):
    from PIL import Image

    frames, _ = make_fan_frames("convex", n_frames=5)
    images = [Image.fromarray(frame) for frame in frames]
    path = tmp_path / "clip.gif"
    images[0].save(path, save_all=True, append_images=images[1:], duration=50, loop=0)
    clip = read_clip(path, fan=False)
    assert np.array_equal(clip.frames, frames)
    assert clip.fps == pytest.approx(20.0)
    assert clip.meta["format"] == "gif"


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".mov", ".gif"])
def test_write_video_round_trip(tmp_path, make_fan_frames, suffix):
    frames, _ = make_fan_frames("convex", n_frames=6)
    path = write_clip(Clip(frames, fps=20.0), tmp_path / f"out{suffix}")
    back = read_clip(path, fan=False)
    assert back.frames.shape == frames.shape
    assert back.fps == pytest.approx(20.0)
    assert np.abs(back.frames.astype(int) - frames).mean() < 8.0


def test_odd_sized_frames_are_padded_not_cropped(tmp_path, make_fan_frames):
    frames, _ = make_fan_frames("convex", n_frames=3)
    odd = frames[:, :179, :239]
    back = read_clip(write_clip(Clip(odd, fps=25.0), tmp_path / "odd.mp4"), fan=False)
    assert back.frames.shape == (3, 180, 240)
    assert np.abs(back.frames[:, :179, :239].astype(int) - odd).mean() < 8.0
    assert back.frames[:, 179, :].mean() < 8 and back.frames[:, :, 239].mean() < 8


def test_single_frame_video_is_valid(tmp_path, make_fan_frames, write_test_video):
    frames, _ = make_fan_frames("convex", n_frames=1)
    assert read_clip(write_test_video(tmp_path / "one.mp4", frames), fan=False).n_frames == 1


def test_truncated_mp4_is_refused(tmp_path, make_fan_frames, write_test_video):
    frames, _ = make_fan_frames("convex", n_frames=6)
    path = write_test_video(tmp_path / "cut.mp4", frames)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(LungUSError, match="truncated") as caught:
        read_clip(path)
    assert str(path) in str(caught.value)


def test_truncated_avi_is_refused(tmp_path, make_fan_frames, write_test_video):
    frames, _ = make_fan_frames("convex", n_frames=8)
    path = write_test_video(tmp_path / "cut.avi", frames, fourcc="MJPG")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(LungUSError, match="truncated or corrupt"):
        read_clip(path)


def test_garbage_with_video_suffix_is_refused(tmp_path):
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(LungUSError, match="cannot decode"):
        read_clip(path)
