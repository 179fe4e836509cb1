"""lungus.sim.clip_stats: the statistics on synthetic clips whose properties are known."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from lungus.io.clip import Clip, FanGeometry
from lungus.io.fan import rectangle_mask, sector_mask
from lungus.sim.clip_stats import DEPTH_NAMES, STATISTICS, clip_statistics

SHAPE = (96, 96)


def linear_fan(shape=SHAPE) -> FanGeometry:
    return FanGeometry(rectangle_mask(shape, (0, 0, *shape)), "linear", source="test")


def noise_frames(n_frames=4, blur=0.0, seed=0, mean=100.0, std=25.0, shape=SHAPE) -> np.ndarray:
    """Independent Gaussian noise frames, optionally blurred (coarser grain), at a given mean and std."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_frames):
        field = rng.standard_normal(shape).astype(np.float32)
        if blur:
            field = cv2.GaussianBlur(field, (0, 0), blur)
        field = (field - field.mean()) / field.std()
        frames.append(np.clip(mean + std * field, 0, 255))
    return np.stack(frames).astype(np.uint8)


def stats_of(frames: np.ndarray, fan: FanGeometry | None = None) -> dict[str, float]:
    return clip_statistics(Clip(frames, fps=25.0, fan=fan or linear_fan(frames.shape[1:])))


def test_every_statistic_is_reported():
    stats = stats_of(noise_frames())
    assert list(stats) == [*STATISTICS, *DEPTH_NAMES]


def test_a_clip_brighter_at_depth_has_a_rising_depth_profile():
    ramp = np.linspace(30, 200, SHAPE[0])[None, :, None]
    frames = np.clip(noise_frames(std=8.0).astype(float) - 100 + ramp, 0, 255).astype(np.uint8)
    stats = stats_of(frames)
    profile = [stats[name] for name in DEPTH_NAMES]
    assert np.all(np.diff(profile) > 0)
    assert stats["depth_slope"] == pytest.approx(170, rel=0.1)


def test_grey_levels_are_measured_inside_the_fan_only():
    frames = np.zeros((2, *SHAPE), np.uint8)
    frames[:, 20:70, 20:70] = 120
    frames[:, :5, :] = 255  # burned-in text outside the fan
    fan = FanGeometry(rectangle_mask(SHAPE, (20, 20, 70, 70)), "linear", source="test")
    stats = stats_of(frames, fan)
    assert stats["grey_mean"] == 120 and stats["grey_spread"] == 0


def test_a_frozen_clip_has_no_temporal_change_and_independent_frames_much():
    frozen = np.repeat(noise_frames(1), 4, axis=0)
    assert stats_of(frozen)["temporal_change"] == 0
    # For independent Gaussian frames E|a - b| = 2 std / sqrt(pi).
    assert stats_of(noise_frames(4))["temporal_change"] == pytest.approx(2 / math.sqrt(math.pi), rel=0.1)


def test_coarser_speckle_has_a_larger_grain_on_both_axes():
    fine, coarse = stats_of(noise_frames(blur=0.7)), stats_of(noise_frames(blur=2.0))
    assert coarse["grain_axial"] > 1.5 * fine["grain_axial"]
    assert coarse["grain_lateral"] > 1.5 * fine["grain_lateral"]


def test_more_contrast_in_the_same_speckle_has_more_speckle_contrast():
    low, high = stats_of(noise_frames(std=10.0)), stats_of(noise_frames(std=30.0))
    assert high["speckle_contrast"] > 2 * low["speckle_contrast"]


def test_a_sector_fan_gives_its_geometry_as_fractions_of_the_height():
    apex, angles, radii = (-40.0, 47.5), (-30.0, 30.0), (45.0, 130.0)
    fan = FanGeometry(sector_mask(SHAPE, apex, angles, radii), "sector", apex=apex, angles_deg=angles, radii=radii)
    frames = np.where(fan.mask, noise_frames(), 0).astype(np.uint8)
    stats = stats_of(frames, fan)
    assert stats["apex_frac"] == pytest.approx(-40 / 96)
    assert stats["top_frac"] == pytest.approx(5 / 96)
    assert stats["bottom_frac"] == pytest.approx(90 / 96)
    assert stats["half_angle_deg"] == 30


def test_a_rectangular_fan_has_no_sector_geometry():
    stats = stats_of(noise_frames())
    assert all(math.isnan(stats[name]) for name in ("apex_frac", "top_frac", "bottom_frac", "half_angle_deg"))
    assert stats["fan_area_frac"] == 1


def test_dark_vertical_sectors_count_as_rib_shadows():
    frames = noise_frames()
    assert stats_of(frames)["rib_shadow_frac"] == 0
    shadowed = frames.copy()
    shadowed[:, :, :24] = 5  # the left quarter: an acoustic shadow from the top down
    assert stats_of(shadowed)["rib_shadow_frac"] == pytest.approx(0.25, abs=0.05)


def test_an_empty_fan_is_refused():
    fan = FanGeometry(np.zeros(SHAPE, bool), "linear", source="test")
    with pytest.raises(ValueError, match="fan is empty"):
        stats_of(noise_frames(), fan)


def test_a_bright_near_field_over_a_dark_deep_one_gives_where_it_ends_and_the_deep_level():
    frames = noise_frames(std=5.0, mean=20.0)
    frames[:, : int(0.3 * SHAPE[0])] += 120  # a bright chest wall over the top 30 %
    stats = stats_of(frames)
    assert stats["bright_depth"] == pytest.approx(0.3, abs=0.05)
    assert stats["deep_grey"] == pytest.approx(20.0, abs=1.0)


def test_a_mostly_black_middle_has_no_grain():
    frames = noise_frames()
    frames[:, 30:90] = 0  # the deep lung clipped to black
    stats = stats_of(frames)
    assert math.isnan(stats["grain_axial"]) and math.isnan(stats["grain_lateral"])
