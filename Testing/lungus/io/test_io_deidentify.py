"""Pixel de-identification: no burned-in text survives, the fan's speckle does.

Text is placed where it defeats a fan-only crop: the frame's corners, a column of scanner
lines ending at the fan's edge, and lines running into the fan (Testing/conftest.py,
make_text_frames). Lossless clips check every drawn pixel; video clips (the way clips
arrive) check the text column the issue found surviving.
"""

from __future__ import annotations

import numpy as np
import pytest

from lungus.io import Clip, detect_fan, read_clip
from lungus.io.deidentify import deidentify
from lungus.io.overlay import StaticOverlayConfig, static_overlay_mask

KINDS = ("convex", "linear", "phased")
TEXT_PLACEMENTS = ("corners", "fan_edge", "bbox_overlap")  # as make_text_frames (Testing/conftest.py) takes them


def restored(cleaned: Clip, shape: tuple[int, ...]) -> np.ndarray:
    """The cleaned frames put back at their place in the original frame (black elsewhere)."""
    row0, col0, row1, col1 = cleaned.meta["fan_bbox"]
    full = np.zeros(shape, dtype=np.uint8)
    full[:, row0:row1, col0:col1] = cleaned.frames
    return full


def kept_share(after: np.ndarray, before: np.ndarray, pixels: np.ndarray) -> float:
    """Share of ``pixels`` whose value is unchanged in every frame."""
    return float((after[:, pixels] == before[:, pixels]).all(axis=0).mean())


@pytest.mark.parametrize("placement", TEXT_PLACEMENTS)
@pytest.mark.parametrize("kind", KINDS)
def test_no_text_pixel_survives_and_the_fan_is_kept(make_text_frames, kind, placement):
    frames, truth, text = make_text_frames(kind, placement)
    cleaned, _ = deidentify(Clip(frames))
    after = restored(cleaned, frames.shape)
    assert after[:, text].max() == 0
    assert kept_share(after, frames, truth & ~text) >= 0.95


@pytest.mark.parametrize("kind", KINDS)
def test_text_running_into_the_fan_is_masked_and_reported(make_text_frames, kind):
    frames, truth, text = make_text_frames(kind, "bbox_overlap")
    assert (text & truth).sum() > 50  # the text does lie over the fan's speckle
    cleaned, report = deidentify(Clip(frames))
    assert restored(cleaned, frames.shape)[:, text & truth].max() == 0
    assert report.static_check == "done" and report.static_masked_inside_fan >= (text & truth).sum()
    assert cleaned.meta["deidentification"] == report.to_dict()


@pytest.mark.parametrize("placement", ["fan_edge", "bbox_overlap"])
@pytest.mark.parametrize("kind", KINDS)
def test_text_in_a_video_is_removed(make_text_frames, write_test_video, tmp_path, kind, placement):
    """The issue's case: a scanner column ending at the fan's edge, or lines running into
    the fan, in a video (the codec blurs the text and re-codes it with noise every frame)
    and without a fan JSON. Today's crop keeps most of it."""
    frames, truth, text = make_text_frames(kind, placement, n_frames=24)
    clip = read_clip(write_test_video(tmp_path / f"{kind}.mp4", frames))
    assert clip.fan.source == "detected"
    cleaned, _ = deidentify(clip)
    assert restored(cleaned, frames.shape)[:, text].max() == 0
    assert kept_share(restored(cleaned, frames.shape), clip.frames, truth & ~text) >= 0.95


@pytest.mark.parametrize("kind", KINDS)
def test_detected_fan_leaves_out_a_text_column_at_its_edge(make_text_frames, write_test_video, tmp_path, kind):
    frames, truth, text = make_text_frames(kind, "fan_edge", n_frames=24)
    fan = detect_fan(read_clip(write_test_video(tmp_path / f"{kind}.mp4", frames), fan=False).frames)
    # The codec blurs the fan's edge and the text's last pixel into each other; the column stays out.
    assert (fan.mask & text).sum() <= 0.1 * text.sum()
    assert (fan.mask & truth).sum() >= 0.98 * truth.sum()


@pytest.mark.parametrize("kind", KINDS)
def test_a_fan_without_text_loses_no_pixel(make_fan_frames, kind):
    frames, _ = make_fan_frames(kind, n_frames=12, overlays=False)
    cleaned, report = deidentify(Clip(frames))
    assert report.static_masked_inside_fan == 0


def test_a_still_clip_is_not_blanked_and_says_why(make_text_frames):
    frames, truth, _ = make_text_frames("convex", "bbox_overlap")
    frozen = np.repeat(frames[:1], 8, axis=0)  # a frozen loop: no motion to tell text from image
    cleaned, report = deidentify(Clip(frozen))
    assert report.static_masked_inside_fan == 0
    assert "barely moves" in report.static_check
    one_frame = deidentify(Clip(frames[:1]))[1]
    assert one_frame.static_check.startswith("1 frame(s)")


def test_report_counts_what_was_blanked_outside_the_fan(make_text_frames):
    frames, truth, text = make_text_frames("linear", "corners")
    cleaned, report = deidentify(Clip(frames))
    assert report.frame_size == (180, 240) and report.cropped_size == cleaned.frames.shape[1:]
    assert report.pixels_outside_fan == int((~detect_fan(frames).mask).sum())
    assert report.content_outside_fan >= text.sum()
    assert "outside the linear fan" in report.summary()


def test_config_rejects_nonsense():
    with pytest.raises(ValueError, match="background_window"):
        StaticOverlayConfig(background_window=4)
    with pytest.raises(ValueError, match="min_frames"):
        StaticOverlayConfig(min_frames=1)


def test_static_overlay_mask_looks_only_inside_the_region(make_text_frames):
    frames, truth, text = make_text_frames("convex", "corners")
    assert static_overlay_mask(frames).mask[text].mean() > 0.9
    assert not static_overlay_mask(frames, region=truth).mask.any()
