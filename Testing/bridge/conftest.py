"""Fixtures for the Slicer bridge tests (run headless under slicer-core).

Slicer puts every scripted-module folder on sys.path; the tests do the same so
``import LungUSBLinesLib`` resolves exactly as it does inside Slicer.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULE_NAMES = ("LungUSBLines", "LungUSTrain", "LungUSInference")
for _module in MODULE_NAMES:
    _folder = str(REPO_ROOT / _module)
    if _folder not in sys.path:
        sys.path.insert(0, _folder)


@pytest.fixture
def headless(tmp_path):
    """A Slicer-wired MRML scene (HeadlessScene); pass ``headless.scene`` to the bridge."""
    pytest.importorskip("slicer", reason="slicer-core is not installed")
    from LungUSBLinesLib.scene import new_headless_scene

    scene = new_headless_scene(tmp_path / "scene-work")
    yield scene
    scene.close()


@pytest.fixture
def small_frames():
    """(4, 6, 8) uint8 frames, different in every pixel and frame, so any flip or
    transposition shows: value = 50*t + 8*row + col."""
    t, row, col = np.meshgrid(np.arange(4), np.arange(6), np.arange(8), indexing="ij")
    return (50 * t + 8 * row + col).astype(np.uint8)


@pytest.fixture
def small_clip(small_frames):
    from lungus.io.clip import Clip

    return Clip(frames=small_frames, fps=25.0, spacing_mm=(0.3, 0.5), source="/data/patient7/zone2.mp4")




@pytest.fixture
def analysed_clip(headless, tmp_path):
    """A clip file opened in the scene with a recorded analysis, no model run (torch-free): a
    bline2 verdict ("present", 0.8) and masks with one B-line column per frame that moves right
    frame by frame, over a pleural line in row 2. Returns (LoadedClip, AnalysisNodes, masks)."""
    from lungus.data.labels.blines import analyse_masks
    from lungus.data.pipeline.clip_preparation import Placement
    from lungus.infer.results import ClipAnalysis, SegmentationOutput
    from lungus.io import Clip, write_clip
    from LungUSBLinesLib.clips import load_clip
    from LungUSBLinesLib.results import add_analysis_to_scene

    n_frames, height, width = 5, 12, 16
    t, row, col = np.meshgrid(np.arange(n_frames), np.arange(height), np.arange(width), indexing="ij")
    frames = (40 + 9 * t + 5 * row + 3 * col).astype(np.uint8)
    path = write_clip(Clip(frames, fps=10.0, spacing_mm=(0.4, 0.3)), tmp_path / "clips" / "zone3.seq.nrrd")
    masks = np.zeros((n_frames, height, width), dtype=np.uint8)
    masks[:, 2, :] = 1  # pleural line
    for frame in range(n_frames):
        masks[frame, 4:, 2 + 2 * frame] = 3  # a B-line
    placement = Placement(crop=(0, 0, height, width), scale=1.0, pad=(0, 0), original_size=(height, width))
    segmentation = SegmentationOutput(
        masks, np.arange(n_frames), placement, np.ones((height, width), bool), analyse_masks(masks)
    )
    analysis = ClipAnalysis(
        clip=str(path), n_frames=n_frames, fps=10.0, frames=np.arange(n_frames), task="bline2",
        class_names=["absent", "present"], probabilities=np.array([0.2, 0.8]), segmentation=segmentation,
        classifier="tiny-cls", segmenter="tiny-seg",
    )
    loaded = load_clip(headless.scene, path)
    return loaded, add_analysis_to_scene(headless.scene, loaded.nodes, analysis), masks

