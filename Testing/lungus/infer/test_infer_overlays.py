"""Overlay pictures: sizes, colours of the segmentation classes, the score strip."""

from __future__ import annotations

import numpy as np
import pytest

from lungus.data.labels.schemes import SEG_CLASSES
from lungus.infer import Analyzer
from lungus.infer.overlays import (
    MAX_DISPLAY_WIDTH,
    _font_scale,
    _frame_label,
    _put_text,
    explanation_sheet,
    overlay_frames,
    text_band_height,
)
from lungus.io import read_clip
from lungus.io.clip import Clip, FanGeometry


@pytest.fixture(scope="module")
def analyzer(tiny_models):
    return Analyzer(tiny_models["classifier"], tiny_models["segmenter"], device="cpu", runtime="torch")


def test_wide_clips_are_reduced_and_small_ones_enlarged(analyzer):
    frames = np.random.default_rng(0).integers(0, 255, (3, 90, 1200), dtype=np.uint8)
    wide = Clip(frames, fps=10.0, fan=FanGeometry(np.ones((90, 1200), bool), "full"))
    video = overlay_frames(wide, analyzer.analyse(wide))
    assert video.shape[0] == 3 and video.shape[2] == MAX_DISPLAY_WIDTH and video.shape[3] == 3
    small = Clip(frames[:, :40, :64], fps=10.0, fan=FanGeometry(np.ones((40, 64), bool), "full"))
    assert overlay_frames(small, analyzer.analyse(small)).shape[2] == 64 * 5


def test_predicted_classes_are_painted_in_their_design_colours(analyzer, tiny_clip_paths):
    clip = read_clip(tiny_clip_paths[0])
    result = analyzer.analyse(clip)
    # Known masks in model space: vertical bands of classes 0..5.
    model_masks = result.segmentation.masks
    model_masks[:] = (np.arange(model_masks.shape[2]) * 6 // model_masks.shape[2]).astype(np.uint8)
    masks = result.segmentation.original_masks(clip.n_frames)
    video = overlay_frames(clip, result)
    factor = video.shape[2] // clip.width
    top = text_band_height(video.shape[2])
    painted = video[0, top : top + clip.height * factor : factor, ::factor].astype(int)
    grey = clip.frames[0].astype(int)
    checked = 0
    for seg_class in SEG_CLASSES[1:]:
        where = masks[0] == seg_class.id
        if where.sum() < 5:
            continue
        # Blended 45 % towards the class colour: the colour's strongest channel rises most.
        shift = (painted[where] - grey[where][:, None]).mean(axis=0)
        assert int(np.argmax(shift)) == int(np.argmax(seg_class.rgb)), seg_class.name
        checked += 1
    assert checked >= 4


def test_the_explanation_sheet_shows_frame_heat_map_and_segmentation(analyzer, tiny_clip_paths):
    clip = read_clip(tiny_clip_paths[1])
    result = analyzer.analyse(clip, explain="gradcam")
    sheet = explanation_sheet(clip, result)
    assert sheet.ndim == 3 and sheet.shape[1] >= 3 * 320
    with pytest.raises(ValueError, match="explain"):
        explanation_sheet(clip, analyzer.analyse(clip))


def _every_class_everywhere(analyzer, clip):
    result = analyzer.analyse(clip)
    model_masks = result.segmentation.masks
    model_masks[:] = (np.arange(model_masks.shape[2]) * 6 // model_masks.shape[2]).astype(np.uint8)
    result.blas = [34.0 for _ in result.frames]
    return result


def _text(words: str, scale: float) -> np.ndarray:
    """The light pixels of ``words`` as _put_text writes them, on black."""
    import cv2

    (width, height), base = cv2.getTextSize(words, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    canvas = np.zeros((height + base + 4, width + 8), np.uint8)
    cv2.putText(canvas, words, (4, height + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, 1, cv2.LINE_AA)
    return canvas


def test_the_header_sits_above_the_mask_colours_and_reads_as_written(analyzer, tiny_clip_paths):
    clip = read_clip(tiny_clip_paths[0])
    result = _every_class_everywhere(analyzer, clip)
    label = _frame_label(result, 0)
    assert label.endswith("BLAS 34%")
    video = overlay_frames(clip, result)
    top = text_band_height(video.shape[2])
    header = video[0, :top].astype(int)
    # A band of its own: grey text on dark grey, none of the class colours (whose channels differ).
    assert np.abs(header - header.mean(axis=2, keepdims=True)).max() <= 2
    assert (header < 40).mean() > 0.7 and header.max() > 200
    # The label's own width and no more.
    drawn_columns = np.flatnonzero(np.abs(header - header[:, -1:]).max(axis=(0, 2)) > 8)
    assert drawn_columns.max() <= 6 + _text(label, _font_scale(video.shape[2])).shape[1]


@pytest.mark.parametrize("scale", [0.6, 1.0])
def test_the_text_outline_ends_with_the_text(scale):
    """A thicker outline stroke advances further per glyph and runs on past "34%" ("34%%")."""
    image = np.full((60, 600, 3), 128, np.uint8)
    _put_text(image, "p(B) 0.49  B-lines 0  BLAS 34%", (6, 40), scale)
    grey = image.astype(int).mean(axis=2)
    outline, text = np.flatnonzero((grey < 60).any(axis=0)), np.flatnonzero((grey > 200).any(axis=0))
    assert outline.max() <= text.max() + 2


def test_the_curve_strip_has_a_legend(analyzer, tiny_clip_paths):
    clip = read_clip(tiny_clip_paths[0])
    video = overlay_frames(clip, _every_class_everywhere(analyzer, clip))
    legend = video[:, -text_band_height(video.shape[2]):].astype(int)
    assert (legend == legend[0]).all()  # the same key under every frame
    reds = (legend[0, ..., 0] > 200) & (legend[0, ..., 1] < 120)
    greens = (legend[0, ..., 1] > 180) & (legend[0, ..., 0] < 100)
    light = legend[0].min(axis=2) > 120
    assert reds.any() and greens.any()  # the cursor's and the count bars' swatches
    assert light[:, legend.shape[2] // 3:].sum() > 30  # and words running across the band
