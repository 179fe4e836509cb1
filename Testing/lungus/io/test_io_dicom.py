"""Ultrasound DICOM reading and writing, on files pydicom writes in the test."""

from __future__ import annotations

import numpy as np
import pytest

from lungus.errors import LungUSError
from lungus.io import Clip, read_clip, write_clip


def _colour_frames(grey: np.ndarray) -> np.ndarray:
    """RGB frames whose content is grey (R = G = B)."""
    return np.repeat(grey[..., None], 3, axis=-1)


def _doppler_frames(grey: np.ndarray) -> np.ndarray:
    """Grey B-mode with a red/blue 'flow' blob that moves from frame to frame."""
    rgb = _colour_frames(grey).copy()
    for index in range(len(rgb)):
        row = 80 + 4 * index
        rgb[index, row : row + 12, 100:130] = (220, 30, 30) if index % 2 else (30, 40, 220)
    return rgb


def test_grey_multiframe_reads_frames_spacing_and_fps(tmp_path, make_fan_frames, write_test_dicom):
    frames, _ = make_fan_frames("convex", n_frames=5)
    path = write_test_dicom(tmp_path / "grey.dcm", frames, spacing_cm=(0.03, 0.025), fps=20.0)
    clip = read_clip(path, fan=False)
    assert np.array_equal(clip.frames, frames)
    assert clip.spacing_mm == pytest.approx((0.25, 0.30))  # (row = DeltaY, col = DeltaX) in mm
    assert clip.fps == pytest.approx(20.0)
    assert clip.rgb is None
    assert clip.meta["format"] == "dicom" and clip.meta["photometric"] == "MONOCHROME2"


@pytest.mark.parametrize("fps_tag", ["CineRate", "FrameTime", "FrameTimeVector"])
def test_fps_comes_from_each_timing_tag(tmp_path, make_fan_frames, write_test_dicom, fps_tag):
    frames, _ = make_fan_frames("convex", n_frames=4)
    path = write_test_dicom(tmp_path / f"{fps_tag}.dcm", frames, fps=30.0, fps_tag=fps_tag)
    assert read_clip(path, fan=False).fps == pytest.approx(30.0, rel=1e-3)


def test_rgb_with_grey_content_becomes_grey_without_rgb(tmp_path, make_fan_frames, write_test_dicom):
    frames, _ = make_fan_frames("convex", n_frames=4)
    path = write_test_dicom(tmp_path / "rgb.dcm", _colour_frames(frames), photometric="RGB")
    clip = read_clip(path, fan=False)
    assert clip.rgb is None
    assert np.abs(clip.frames.astype(int) - frames).max() <= 1


def test_rgb_doppler_keeps_colour(tmp_path, make_fan_frames, write_test_dicom):
    frames, _ = make_fan_frames("convex", n_frames=4)
    doppler = _doppler_frames(frames)
    clip = read_clip(write_test_dicom(tmp_path / "doppler.dcm", doppler), fan=False)
    assert clip.rgb is not None and clip.rgb.shape == doppler.shape
    assert np.array_equal(clip.rgb, doppler)


@pytest.mark.parametrize("photometric", ["YBR_FULL", "YBR_FULL_422"])
def test_ybr_photometric_is_converted(tmp_path, make_fan_frames, write_test_dicom, photometric):
    frames, _ = make_fan_frames("convex", n_frames=3)
    path = write_test_dicom(tmp_path / f"{photometric}.dcm", _colour_frames(frames), photometric=photometric)
    clip = read_clip(path, fan=False)
    assert clip.meta["photometric"] == photometric
    assert clip.rgb is None  # grey content: no colour kept
    assert np.abs(clip.frames.astype(int) - frames).mean() < 1.0


def test_jpeg_baseline_grey_decodes(tmp_path, make_fan_frames, write_test_dicom):
    frames, _ = make_fan_frames("convex", n_frames=4)
    clip = read_clip(write_test_dicom(tmp_path / "jpeg.dcm", frames, jpeg=True), fan=False)
    assert "JPEG Baseline" in clip.meta["transfer_syntax"]
    assert clip.frames.shape == frames.shape
    assert np.abs(clip.frames.astype(int) - frames).mean() < 3.0  # lossy, but close


def test_jpeg_ybr_colour_decodes_to_grey(tmp_path, make_fan_frames, write_test_dicom):
    frames, _ = make_fan_frames("convex", n_frames=3)
    path = write_test_dicom(tmp_path / "jpeg_rgb.dcm", _colour_frames(frames), jpeg=True)
    clip = read_clip(path, fan=False)
    assert clip.meta["photometric"] == "YBR_FULL_422"
    assert clip.rgb is None
    assert np.abs(clip.frames.astype(int) - frames).mean() < 3.0


def test_single_frame_dicom_is_a_valid_clip(tmp_path, make_fan_frames, write_test_dicom):
    frames, _ = make_fan_frames("convex", n_frames=1)
    clip = read_clip(write_test_dicom(tmp_path / "one.dcm", frames, fps=None), fan=False)
    assert clip.n_frames == 1 and clip.fps is None


def test_patient_identifiers_do_not_leak(tmp_path, make_fan_frames, write_test_dicom):
    frames, _ = make_fan_frames("convex", n_frames=2)
    path = write_test_dicom(tmp_path / "id.dcm", frames, patient_name="Doe^Jane", patient_id="PID-12345")
    clip = read_clip(path)
    text = repr(clip.meta) + repr(clip.summary())
    assert "Doe" not in text and "PID-12345" not in text and "19700101" not in text


def test_patient_identifiers_only_when_asked(tmp_path, make_fan_frames, write_test_dicom):
    frames, _ = make_fan_frames("convex", n_frames=2)
    path = write_test_dicom(tmp_path / "id.dcm", frames, patient_name="Doe^Jane", patient_id="PID-12345")
    identifiers = read_clip(path, fan=False, identifiers=True).meta["identifiers"]
    assert identifiers["PatientName"] == "Doe^Jane" and identifiers["PatientID"] == "PID-12345"


def test_dicom_without_suffix_is_recognised(tmp_path, make_fan_frames, write_test_dicom):
    frames, _ = make_fan_frames("convex", n_frames=2)
    path = write_test_dicom(tmp_path / "1.2.840.99999.1", frames)
    assert read_clip(path, fan=False).meta["format"] == "dicom"


@pytest.mark.parametrize("compression", [None, "jpeg"])
def test_write_dicom_round_trip(tmp_path, make_fan_frames, compression):
    frames, _ = make_fan_frames("convex", n_frames=4)
    clip = Clip(frames, fps=24.0, spacing_mm=(0.2, 0.25))
    path = write_clip(clip, tmp_path / "out.dcm", compression=compression)
    back = read_clip(path, fan=False)
    tolerance = 0 if compression is None else 3.0
    assert np.abs(back.frames.astype(int) - frames).mean() <= tolerance
    assert back.fps == pytest.approx(24.0, rel=1e-4)
    assert back.spacing_mm == pytest.approx((0.2, 0.25))
    assert back.meta["sop_class"] == "Ultrasound Multi-frame Image Storage"


def test_write_dicom_jpeg_colour_round_trip(tmp_path, make_fan_frames):
    frames, _ = make_fan_frames("convex", n_frames=4)
    doppler = _doppler_frames(frames)
    grey = Clip(frames, fps=20.0, rgb=doppler)
    back = read_clip(write_clip(grey, tmp_path / "doppler.dcm", compression="jpeg"), fan=False)
    assert back.meta["photometric"] == "YBR_FULL_422"
    assert back.rgb is not None
    assert np.abs(back.rgb.astype(int) - doppler).mean() < 6.0


def test_written_dicom_carries_no_patient_data(tmp_path, make_fan_frames):
    import pydicom

    frames, _ = make_fan_frames("convex", n_frames=2)
    clip = Clip(frames, fps=20.0, meta={"identifiers": {"PatientName": "Doe^Jane"}})
    ds = pydicom.dcmread(write_clip(clip, tmp_path / "anon.dcm"))
    assert str(ds.PatientName) == "" and str(ds.PatientID) == ""


def test_dicom_without_pixel_data_is_refused(tmp_path, make_fan_frames, write_test_dicom):
    frames, _ = make_fan_frames("convex", n_frames=2)
    path = write_test_dicom(tmp_path / "nopixels.dcm", frames, pixel_data=False)
    with pytest.raises(LungUSError, match="no pixel data") as caught:
        read_clip(path)
    assert str(path) in str(caught.value)


def test_truncated_dicom_is_refused(tmp_path, make_fan_frames, write_test_dicom):
    frames, _ = make_fan_frames("convex", n_frames=4)
    path = write_test_dicom(tmp_path / "cut.dcm", frames)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(LungUSError, match="truncated or corrupt"):
        read_clip(path)


def test_truncated_jpeg_dicom_is_refused(tmp_path, make_fan_frames, write_test_dicom):
    frames, _ = make_fan_frames("convex", n_frames=4)
    path = write_test_dicom(tmp_path / "cut_jpeg.dcm", frames, jpeg=True)
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    with pytest.raises(LungUSError, match="truncated"):
        read_clip(path)


def test_absurd_dicom_size_is_refused_from_the_header(tmp_path, make_fan_frames, write_test_dicom):
    frames, _ = make_fan_frames("convex", n_frames=2)
    path = write_test_dicom(tmp_path / "huge.dcm", frames[:, :4, :4], number_of_frames=5000)
    import pydicom

    ds = pydicom.dcmread(path)
    ds.Rows, ds.Columns = 4000, 4000
    ds.save_as(path)
    with pytest.raises(LungUSError, match="max_voxels"):
        read_clip(path)
