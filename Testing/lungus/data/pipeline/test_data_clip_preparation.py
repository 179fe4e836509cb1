import cv2
import numpy as np
import pytest

from lungus.data.pipeline.clip_preparation import ClipCache, Preprocessing, frame_indices, prepare_clip
from lungus.io import sector_mask, write_clip
from lungus.io.clip import Clip, FanGeometry


def _sector_clip(n_frames=6, fps=30.0):
    shape = (120, 200)
    apex, angles, radii = (-40.0, 100.0), (-30.0, 30.0), (60.0, 165.0)
    mask = sector_mask(shape, apex, angles, radii)
    rng = np.random.default_rng(0)
    frames = np.where(mask, rng.integers(30, 200, (n_frames, *shape)), 0).astype(np.uint8)
    frames[:, 2:10, 2:60] = 255  # burned-in text outside the fan
    fan = FanGeometry(mask, "sector", apex=apex, angles_deg=angles, radii=radii)
    return Clip(frames, fps=fps, fan=fan)


def test_letterbox_keeps_the_aspect_ratio_and_removes_text():
    clip = _sector_clip()
    prepared = prepare_clip(clip, Preprocessing((64, 64)))
    assert prepared.frames.shape == (6, 64, 64)
    rows = np.flatnonzero(prepared.frames.max(axis=(0, 2)) > 0)
    cols = np.flatnonzero(prepared.frames.max(axis=(0, 1)) > 0)
    content_aspect = (rows[-1] - rows[0] + 1) / (cols[-1] - cols[0] + 1)
    row0, col0, row1, col1 = clip.fan.bbox
    assert content_aspect == pytest.approx((row1 - row0) / (col1 - col0), rel=0.1)
    assert prepared.frames.max() < 255  # the white text block is gone


def test_frame_rate_is_reduced_never_invented():
    assert list(frame_indices(10, 30.0, 15.0)) == [0, 2, 4, 6, 8]
    assert list(frame_indices(4, 10.0, 25.0)) == [0, 1, 2, 3]
    assert list(frame_indices(4, None, 25.0)) == [0, 1, 2, 3]


def test_placement_maps_model_space_back_onto_the_fan():
    clip = _sector_clip()
    prepared = prepare_clip(clip, Preprocessing((64, 64)))
    back = prepared.placement.to_original(np.full((64, 64), 7, np.uint8))
    assert back.shape == clip.frames.shape[1:]
    assert (back[clip.fan.mask] == 7).mean() > 0.97


def test_polar_layout_unwraps_radial_lines_into_columns():
    clip = _sector_clip()
    apex = np.array(clip.fan.apex)
    # a radial bright line at +10 degrees: it should become one column of the grid
    for radius in np.arange(60, 165, 0.5):
        row, col = apex + radius * np.array([np.cos(np.radians(10)), np.sin(np.radians(10))])
        cv2.circle(clip.frames[0], (int(round(col)), int(round(row))), 1, 255, -1)
    prepared = prepare_clip(clip, Preprocessing((48, 60), layout="polar"))
    assert prepared.frames.shape == (6, 48, 60)
    column = prepared.frames[0].astype(float).mean(axis=0)
    expected = (10 - (-30)) / 60 * 59
    assert abs(int(np.argmax(column)) - expected) <= 2
    assert prepared.placement.sector is not None
    back = prepared.placement.to_original(prepared.frames[0], cv2.INTER_LINEAR)
    assert back.shape == clip.frames.shape[1:]


def test_polar_layout_falls_back_to_letterbox_without_a_sector():
    clip = _sector_clip()
    clip.fan = FanGeometry(np.ones(clip.frames.shape[1:], bool), "full")
    prepared = prepare_clip(clip, Preprocessing((64, 64), layout="polar"))
    assert prepared.placement.sector is None


def test_cache_returns_the_same_prepared_clip(tmp_path):
    clip = _sector_clip()
    path = write_clip(clip, tmp_path / "clip.npz")
    cache = ClipCache(tmp_path / "cache")
    pre = Preprocessing((48, 48), layout="polar")
    first = cache.get(path, pre)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    second = cache.get(path, pre)
    assert np.array_equal(first.frames, second.frames)
    assert second.placement == first.placement
    assert second.fan.kind == first.fan.kind
    other = cache.get(path, Preprocessing((32, 32)))
    assert other.frames.shape[1:] == (32, 32)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2
