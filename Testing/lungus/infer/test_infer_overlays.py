"""Overlay pictures: sizes, colours of the segmentation classes, the score strip."""

from __future__ import annotations

import numpy as np
import pytest

from lungus.data.labels.schemes import SEG_CLASSES
from lungus.infer import Analyzer
from lungus.infer.overlays import MAX_DISPLAY_WIDTH, explanation_sheet, overlay_frames
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
    painted = video[0, : clip.height * factor : factor, ::factor].astype(int)
    grey = clip.frames[0].astype(int)
    checked = 0
    for seg_class in SEG_CLASSES[1:]:
        where = masks[0] == seg_class.id
        where[:20] = False  # the score text is written at the top
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
