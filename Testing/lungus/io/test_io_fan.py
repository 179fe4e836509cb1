"""Fan detection, masking (pixel de-identification) and the SlicerUltrasound fan JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from lungus.errors import LungUSError
from lungus.io import Clip, FanGeometry, crop_to_fan, detect_fan, read_clip, sector_mask

REAL_CLIPS = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "covid-blues-dev" / "lus_videos"


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.logical_and(a, b).sum() / np.logical_or(a, b).sum())


@pytest.mark.parametrize("n_frames", [6, 1], ids=["moving", "still"])
@pytest.mark.parametrize(
    ("kind", "expected"), [("convex", "sector"), ("linear", "linear"), ("phased", "sector")]
)
def test_detected_fan_matches_the_known_fan(make_fan_frames, kind, expected, n_frames):
    frames, truth = make_fan_frames(kind, n_frames=n_frames)
    fan = detect_fan(frames)
    assert fan.kind == expected
    assert _iou(fan.mask, truth) >= 0.95


@pytest.mark.parametrize("kind", ["convex", "linear", "phased"])
def test_black_rib_shadow_does_not_shrink_the_fan(make_fan_frames, kind):
    frames, truth = make_fan_frames(kind, shadow=True)
    assert _iou(detect_fan(frames).mask, truth) >= 0.95


def test_convex_geometry_is_recovered(make_fan_frames):
    fan = detect_fan(make_fan_frames("convex")[0])  # truth: apex (-50, 120), +-30 deg, radii 70..210
    assert fan.apex == pytest.approx((-50.0, 120.0), abs=2.0)
    assert fan.angles_deg == pytest.approx((-30.0, 30.0), abs=1.0)
    assert fan.radii == pytest.approx((70.0, 210.0), abs=3.0)


def test_burned_in_text_is_gone_after_masking(make_fan_frames):
    frames, truth = make_fan_frames("convex")
    overlays = (frames.max(axis=0) > 0) & ~truth
    assert overlays.sum() > 100  # the fixture did burn in text, a logo and ticks
    masked = crop_to_fan(Clip(frames))
    row0, col0, row1, col1 = masked.meta["fan_bbox"]
    restored = np.zeros_like(frames)
    restored[:, row0:row1, col0:col1] = masked.frames
    # Every overlay pixel more than two pixels from the fan is black now.
    far_from_fan = overlays & ~cv2.dilate(truth.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert far_from_fan.sum() > 100
    assert restored[:, far_from_fan].max() == 0
    # ... and the image inside the fan is untouched.
    inside = truth & masked_mask(masked, frames.shape[1:])
    assert np.array_equal(restored[:, inside], frames[:, inside])


def masked_mask(clip: Clip, shape) -> np.ndarray:
    row0, col0, row1, col1 = clip.meta["fan_bbox"]
    full = np.zeros(shape, dtype=bool)
    full[row0:row1, col0:col1] = clip.fan.mask
    return full


def test_crop_to_fan_moves_the_geometry_with_the_crop(make_fan_frames):
    frames, _ = make_fan_frames("convex")
    clip = Clip(frames, fps=25.0, spacing_mm=(0.2, 0.2), fan=detect_fan(frames))
    cropped = crop_to_fan(clip)
    row0, col0, row1, col1 = clip.fan.bbox
    assert cropped.frames.shape == (6, row1 - row0, col1 - col0)
    assert cropped.fan.apex == pytest.approx((clip.fan.apex[0] - row0, clip.fan.apex[1] - col0))
    assert cropped.fan.angles_deg == clip.fan.angles_deg and cropped.fps == 25.0
    rebuilt = sector_mask(cropped.fan.mask.shape, cropped.fan.apex, cropped.fan.angles_deg, cropped.fan.radii)
    assert _iou(rebuilt, cropped.fan.mask) > 0.99


def test_already_cropped_fan_touching_the_edges_keeps_its_content(make_fan_frames):
    frames, truth = make_fan_frames("convex", overlays=False)
    rows, cols = np.flatnonzero(truth.any(axis=1)), np.flatnonzero(truth.any(axis=0))
    # Cut tighter than the fan, so the sides and the far arc run into the frame edges.
    cut = (slice(rows[0], rows[-1] - 10), slice(cols[0] + 15, cols[-1] - 15))
    cropped_frames, cropped_truth = frames[:, cut[0], cut[1]], truth[cut]
    fan = detect_fan(cropped_frames)
    assert fan.kind in ("sector", "full")
    assert (fan.mask & cropped_truth).sum() / cropped_truth.sum() >= 0.99  # no image content cut away
    assert _iou(fan.mask, cropped_truth) >= 0.95


def test_blank_clip_is_full(make_fan_frames):
    fan = detect_fan(np.zeros((3, 40, 50), np.uint8))
    assert fan.kind == "full" and fan.mask.all()


def test_full_frame_image_is_full():
    frames = np.random.default_rng(1).integers(20, 200, (4, 60, 80), dtype=np.uint8)
    assert detect_fan(frames).kind == "full"


def test_read_clip_sets_the_fan(mp4_clip):
    clip = read_clip(mp4_clip)
    assert clip.fan is not None and clip.fan.kind == "sector" and clip.fan.source == "detected"
    assert read_clip(mp4_clip, fan=False).fan is None


# ----------------------------------------------------------------- SlicerUltrasound sidecar


def _anonymize_ultrasound_fan(nested: bool) -> dict:
    # The convex fixture's fan in AnonymizeUltrasound's convention: OpenCV angles from the
    # +column axis towards +row (straight down = 90), left edge first.
    config = {
        "mask_type": "fan",
        "angle1": 120.0,
        "angle2": 60.0,
        "center_rows_px": -50,
        "center_cols_px": 120,
        "radius1": 70,
        "radius2": 210,
        "image_size_rows": 180,
        "image_size_cols": 240,
    }
    record = {"SOPInstanceUID": "1.2.3", "GrayscaleConversion": False}
    if nested:
        record["MaskConfig"] = config
    else:
        record.update(config)
    return record


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "MaskConfig"])
def test_slicer_ultrasound_fan_json_beside_the_clip_is_used(
    tmp_path, make_fan_frames, write_test_dicom, nested
):
    frames, truth = make_fan_frames("convex", n_frames=3)
    path = write_test_dicom(tmp_path / "scan.dcm", frames)
    (tmp_path / "scan.json").write_text(json.dumps(_anonymize_ultrasound_fan(nested)))
    clip = read_clip(path)
    assert clip.fan.source == "slicer-ultrasound-json" and clip.meta["fan_json"] == "scan.json"
    assert clip.fan.angles_deg == (-30.0, 30.0) and clip.fan.apex == (-50.0, 120.0)
    assert _iou(clip.fan.mask, truth) >= 0.99


def test_slicer_ultrasound_rectangle_json(tmp_path, make_fan_frames, write_test_dicom):
    frames, truth = make_fan_frames("linear", n_frames=2)
    path = write_test_dicom(tmp_path / "lin.dcm", frames)
    rectangle = {
        "mask_type": "rectangle",
        "rectangle_left": 44,
        "rectangle_right": 196,
        "rectangle_top": 22,
        "rectangle_bottom": 166,
    }
    (tmp_path / "lin.json").write_text(json.dumps(rectangle))
    clip = read_clip(path)
    assert clip.fan.kind == "linear" and np.array_equal(clip.fan.mask, truth)


def test_fan_json_for_another_image_size_is_refused(tmp_path, make_fan_frames, write_test_dicom):
    frames, _ = make_fan_frames("convex", n_frames=2)
    path = write_test_dicom(tmp_path / "scan.dcm", frames)
    record = _anonymize_ultrasound_fan(nested=False) | {"image_size_rows": 600}
    (tmp_path / "scan.json").write_text(json.dumps(record))
    with pytest.raises(LungUSError, match="600x240 image but the clip is 180x240"):
        read_clip(path)


def test_json_without_mask_is_ignored(tmp_path, make_fan_frames, write_test_dicom):
    frames, _ = make_fan_frames("convex", n_frames=2)
    path = write_test_dicom(tmp_path / "scan.dcm", frames)
    (tmp_path / "scan.json").write_text(json.dumps({"SOPInstanceUID": "1.2.3", "labels": []}))
    assert read_clip(path).fan.source == "detected"


@pytest.mark.parametrize("fan", [
    FanGeometry(sector_mask((120, 100), (-30.0, 50.0), (-35.0, 35.0), (40.0, 140.0)), "sector",
                apex=(-30.0, 50.0), angles_deg=(-35.0, 35.0), radii=(40.0, 140.0)),
    FanGeometry(np.pad(np.ones((80, 60), dtype=bool), ((10, 30), (20, 20))), "linear"),
], ids=["sector", "linear"])
def test_a_fan_written_as_slicer_ultrasound_keys_reads_back_the_same(tmp_path, fan):
    from lungus.io.fan import fan_sidecar_record, read_fan_sidecar

    path = tmp_path / "clip.json"
    path.write_text(json.dumps(fan_sidecar_record(fan)))
    back = read_fan_sidecar(path, fan.mask.shape)
    assert back.kind == fan.kind and np.array_equal(back.mask, fan.mask)
    assert (back.apex, back.angles_deg, back.radii) == (fan.apex, fan.angles_deg, fan.radii)


def test_fan_geometry_rejects_unknown_kind():
    with pytest.raises(ValueError, match="sector, linear or full"):
        FanGeometry(np.ones((3, 3), bool), "oval")


# ----------------------------------------------------------------- real clips


@pytest.mark.realdata
@pytest.mark.skipif(not REAL_CLIPS.is_dir(), reason="covid-blues-dev clips are not on this machine")
@pytest.mark.parametrize("name", ["patient_10_L1.mp4", "patient_17_L2.mp4", "patient_23_R1.mp4"])
def test_real_cropped_convex_clip_keeps_its_content(name):
    clip = read_clip(REAL_CLIPS / name)
    frames = clip.frames.astype(np.float32)
    content = (frames.max(axis=0) > 12) & (frames.std(axis=0) > 2)
    lost = (content & ~clip.fan.mask).sum() / content.sum()
    assert clip.fan.kind == "sector"
    assert lost < 0.005
    # Only black goes: the corners, and where the far field is black the fan may end early.
    assert clip.fan.area_fraction > 0.8
    assert os.fspath(clip.source).endswith(name)
