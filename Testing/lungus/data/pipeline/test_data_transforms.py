"""Fan unwrapping (lungus.data.pipeline.transforms): radial lines become columns, the fan mask is kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lungus.data.pipeline.transforms import (
    LUMIFY_CROPPED_SECTOR,
    is_unwrappable,
    relative_sector,
    rewrap_fan,
    unwrap_fan,
    unwrap_maps,
)
from lungus.io.clip import FanGeometry
from lungus.io.fan import sector_mask

REAL_CLIP = Path(__file__).resolve().parents[5] / "shared/data/covid-blues-dev/lus_videos/patient_9_L1.mp4"
APEX, ANGLES, RADII, SHAPE = (-40.0, 80.0), (-30.0, 30.0), (50.0, 160.0), (120, 160)


def _sector() -> FanGeometry:
    return FanGeometry(sector_mask(SHAPE, APEX, ANGLES, RADII), "sector", apex=APEX, angles_deg=ANGLES, radii=RADII)


def _radial_line(angle_deg: float) -> np.ndarray:
    """A frame with one bright ray from the apex at ``angle_deg`` (from straight down, + right)."""
    frame = np.zeros(SHAPE, np.uint8)
    theta = np.radians(angle_deg)
    for radius in np.arange(RADII[0], RADII[1], 0.25):
        row, col = APEX[0] + radius * np.cos(theta), APEX[1] + radius * np.sin(theta)
        if 0 <= row < SHAPE[0] and 0 <= col < SHAPE[1]:
            frame[int(row), int(col)] = 255
    return frame


def test_a_radial_line_becomes_a_column_at_its_angle():
    size = (40, 61)  # one column per degree over the 60-degree sector
    out = unwrap_fan(_radial_line(10.0), _sector(), size).astype(float)
    peak_columns = out[2:-2].argmax(axis=1)  # the ends of the ray may be clipped by the fan
    assert out[2:-2].max(axis=1).min() > 50
    assert np.all(np.abs(peak_columns - 40) <= 1)  # -30 deg is column 0, +10 deg is column 40


def test_grid_cells_outside_the_fan_are_zero():
    fan = _sector()
    frames = np.full((2, *SHAPE), 200, np.uint8)
    half = FanGeometry(fan.mask & (np.arange(SHAPE[1])[None, :] < APEX[1]), "sector", apex=APEX,
                       angles_deg=ANGLES, radii=RADII)
    out = unwrap_fan(frames, half, 32)
    assert out[:, 2:-2, 2:12].min() > 0  # left half of the sector: image (its edge cells may fall outside)
    assert out[:, :, -10:].max() == 0  # right half: masked out


def test_keeps_frames_and_a_single_frame_stays_2d():
    frames = np.random.default_rng(0).integers(0, 255, (3, *SHAPE), dtype=np.uint8)
    assert unwrap_fan(frames, _sector(), (24, 32)).shape == (3, 24, 32)
    assert unwrap_fan(frames[0], _sector(), (24, 32)).shape == (24, 32)


def test_nearest_interpolation_keeps_class_ids():
    masks = np.zeros(SHAPE, np.uint8)
    masks[60:, 70:90] = 3
    out = unwrap_fan(masks, _sector(), 48, interpolation="nearest")
    assert set(np.unique(out)) <= {0, 3} and (out == 3).any()


def test_maps_start_at_the_inner_radius_on_the_left_edge():
    map_x, map_y = unwrap_maps(_sector(), (10, 20))
    theta = np.radians(ANGLES[0])
    assert map_y[0, 0] == pytest.approx(APEX[0] + RADII[0] * np.cos(theta), abs=1e-3)
    assert map_x[0, 0] == pytest.approx(APEX[1] + RADII[0] * np.sin(theta), abs=1e-3)


def test_a_linear_fan_cannot_be_unwrapped():
    linear = FanGeometry(np.ones(SHAPE, bool), "linear")
    assert not is_unwrappable(linear)
    with pytest.raises(ValueError, match="sector"):
        unwrap_fan(np.zeros(SHAPE, np.uint8), linear, 16)


def test_relative_sector_scales_with_the_frame():
    fan = relative_sector((350, 350), LUMIFY_CROPPED_SECTOR)
    assert fan.kind == "sector" and is_unwrappable(fan)
    assert fan.apex == pytest.approx((-0.536 * 350, 0.509 * 350))
    assert fan.angles_deg == pytest.approx((-33.4, 33.4))
    assert fan.mask[200, 175] and not fan.mask[0, 0]


def test_relative_sector_rejects_inverted_radii():
    with pytest.raises(ValueError, match="inner < outer"):
        relative_sector((100, 100), (-0.5, 0.5, 30.0, 1.5, 0.5))


@pytest.mark.realdata
@pytest.mark.skipif(not REAL_CLIP.exists(), reason="covid-blues-dev is not beside the checkout")
def test_lumify_sector_matches_the_detected_fan_of_a_real_clip():
    from lungus.io import read_clip

    clip = read_clip(REAL_CLIP)
    assume = relative_sector((clip.height, clip.width), LUMIFY_CROPPED_SECTOR)
    assert clip.fan.kind == "sector"
    assert np.hypot(*np.subtract(clip.fan.apex, assume.apex)) < 15
    overlap = (clip.fan.mask & assume.mask).sum() / (clip.fan.mask | assume.mask).sum()
    assert overlap > 0.9


def test_rewrap_undoes_unwrap_inside_the_fan():
    fan = _sector()
    rows = np.arange(SHAPE[0], dtype=float)[:, None]
    frame = np.where(fan.mask, 40 + rows + np.zeros((1, SHAPE[1])), 0).astype(np.uint8)  # smooth depth ramp
    back = rewrap_fan(unwrap_fan(frame, fan, (120, 120)), fan)
    core = fan.mask.copy()
    for shift in (-3, 3):  # away from the fan's edges, where resampling mixes in the zeros outside
        core &= np.roll(fan.mask, shift, axis=0) & np.roll(fan.mask, shift, axis=1)
    assert np.abs(back[core].astype(int) - frame[core]).max() <= 3
    assert back[~fan.mask].max() == 0


def test_rewrap_puts_a_grid_column_back_on_its_ray():
    fan = _sector()
    grid = np.zeros((40, 61), np.uint8)
    grid[:, 40] = 255  # +10 degrees
    back = rewrap_fan(grid, fan, interpolation="nearest")
    rr, cc = np.nonzero(back)
    angles = np.degrees(np.arctan2(cc - APEX[1], rr - APEX[0]))
    assert len(rr) > 50 and np.all(np.abs(angles - 10.0) < 1.5)
