"""NRRD: Slicer volume sequences (.seq.nrrd) and plain stacks, through pynrrd."""

from __future__ import annotations

import nrrd
import numpy as np
import pytest

from lungus.errors import LungUSError
from lungus.io import Clip, read_clip, write_clip


def test_seq_nrrd_header_is_like_slicers(tmp_path, make_fan_frames):
    frames, _ = make_fan_frames("convex", n_frames=4)
    path = write_clip(Clip(frames, fps=25.0, spacing_mm=(0.2, 0.3)), tmp_path / "clip.seq.nrrd")
    header = nrrd.read_header(str(path))
    assert list(header["sizes"]) == [240, 180, 1, 4]
    assert header["kinds"] == ["domain", "domain", "domain", "list"]
    assert header["labels"][3] == "time" and header["units"][3] == "s"
    assert header["space"] == "left-posterior-superior"
    assert header["DataNodeClassName"] == "vtkMRMLScalarVolumeNode"
    assert header["axis 3 index type"] == "numeric"
    assert [float(value) for value in header["axis 3 index values"].split()] == pytest.approx(
        [0, 0.04, 0.08, 0.12]
    )
    directions = header["space directions"]
    assert directions[0] == pytest.approx([0.3, 0, 0]) and directions[1] == pytest.approx([0, 0.2, 0])
    assert np.isnan(directions[3]).all()


def test_seq_nrrd_round_trip(tmp_path, make_fan_frames):
    frames, _ = make_fan_frames("convex", n_frames=5)
    path = write_clip(Clip(frames, fps=30.0, spacing_mm=(0.2, 0.3)), tmp_path / "clip.seq.nrrd")
    back = read_clip(path, fan=False)
    assert np.array_equal(back.frames, frames)
    assert back.fps == pytest.approx(30.0)
    assert back.spacing_mm == pytest.approx((0.2, 0.3))
    assert back.meta["sequence"] is True


def test_seq_nrrd_gzip_round_trip(tmp_path, make_fan_frames):
    frames, _ = make_fan_frames("convex", n_frames=3)
    path = write_clip(Clip(frames, fps=25.0), tmp_path / "clip.seq.nrrd", compression="gzip")
    assert nrrd.read_header(str(path))["encoding"] == "gzip"
    back = read_clip(path, fan=False)
    assert np.array_equal(back.frames, frames) and back.spacing_mm is None


def test_seq_nrrd_without_fps_indexes_frames(tmp_path, make_fan_frames):
    frames, _ = make_fan_frames("convex", n_frames=3)
    path = write_clip(Clip(frames), tmp_path / "clip.seq.nrrd")
    header = nrrd.read_header(str(path))
    assert header["labels"][3] == "frame" and header["axis 3 index values"] == "0 1 2"
    assert read_clip(path, fan=False).fps is None


def test_colour_seq_nrrd_is_a_vector_volume_sequence(tmp_path, make_fan_frames):
    frames, _ = make_fan_frames("convex", n_frames=3)
    rgb = np.repeat(frames[..., None], 3, axis=-1)
    for index in range(3):
        rgb[index, 60 + 10 * index : 80 + 10 * index, 100:130] = (200, 20, 20)
    path = write_clip(Clip(frames, fps=25.0, rgb=rgb), tmp_path / "doppler.seq.nrrd")
    header = nrrd.read_header(str(path))
    assert header["kinds"] == ["RGB-color", "domain", "domain", "domain", "list"]
    assert header["DataNodeClassName"] == "vtkMRMLVectorVolumeNode"
    back = read_clip(path, fan=False)
    assert np.array_equal(back.rgb, rgb)


def test_reads_list_first_sequence_layout(tmp_path, make_fan_frames):
    """Older Slicer files put the list axis first ("axis 0 index values")."""
    frames, _ = make_fan_frames("convex", n_frames=3)
    data = np.transpose(frames, (0, 2, 1))[:, :, :, None]  # (T, W, H, 1) in NRRD axis order
    header = {
        "space": "right-anterior-superior",
        "space directions": np.array([[np.nan] * 3, [0.5, 0, 0], [0, 0.4, 0], [0, 0, 1]]),
        "kinds": ["list", "domain", "domain", "domain"],
        "labels": ["time", "", "", ""],
        "units": ["s", "", "", ""],
        "axis 0 index type": "numeric",
        "axis 0 index values": "10 10.1 10.2",
    }
    path = tmp_path / "old.seq.nrrd"
    nrrd.write(str(path), data, header, index_order="F")
    clip = read_clip(path, fan=False)
    assert np.array_equal(clip.frames, frames)
    assert clip.fps == pytest.approx(10.0)
    assert clip.spacing_mm == pytest.approx((0.4, 0.5))


def test_plain_nrrd_round_trip(tmp_path, make_fan_frames):
    frames, _ = make_fan_frames("linear", n_frames=4)
    path = write_clip(Clip(frames, fps=15.0, spacing_mm=(0.1, 0.1)), tmp_path / "stack.nrrd")
    header = nrrd.read_header(str(path))
    assert list(header["sizes"]) == [240, 180, 4] and header["kinds"] == ["domain"] * 3
    back = read_clip(path, fan=False)
    assert np.array_equal(back.frames, frames)
    assert back.fps == pytest.approx(15.0) and back.spacing_mm == pytest.approx((0.1, 0.1))


def test_16_bit_nrrd_is_rescaled_to_uint8(tmp_path):
    data = np.arange(2 * 10 * 12, dtype=np.uint16).reshape(12, 10, 2) * 100  # (W, H, T)
    path = tmp_path / "deep.nrrd"
    nrrd.write(str(path), data, index_order="F")
    clip = read_clip(path, fan=False)
    assert clip.frames.dtype == np.uint8 and clip.frames.shape == (2, 10, 12)
    assert clip.frames.min() == 0 and clip.frames.max() == 255
    assert clip.meta["intensity_rescaled"] is True


def test_sequence_of_3d_volumes_is_refused(tmp_path):
    path = tmp_path / "vols.seq.nrrd"
    nrrd.write(str(path), np.zeros((4, 5, 3, 2), np.uint8), {"kinds": ["domain", "domain", "domain", "list"]})
    with pytest.raises(LungUSError, match="3-D volumes"):
        read_clip(path)


def test_absurd_nrrd_size_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.nrrd"
    path.write_bytes(
        b"NRRD0004\ntype: unsigned char\ndimension: 3\nsizes: 4000 4000 5000\nencoding: raw\n\n" + bytes(64)
    )
    with pytest.raises(LungUSError, match="80,000,000,000 voxels"):
        read_clip(path)


def test_truncated_nrrd_is_refused(tmp_path, make_fan_frames):
    frames, _ = make_fan_frames("convex", n_frames=4)
    path = write_clip(Clip(frames, fps=25.0), tmp_path / "cut.seq.nrrd")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(LungUSError, match="truncated or corrupt NRRD"):
        read_clip(path)
