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


@pytest.fixture(scope="session")
def bridge_models(tmp_path_factory) -> dict[str, Path]:
    """Untrained tiny models saved as model files with the cards training writes: a bline2
    frame_cnn classifier (32x32, 4-frame windows) and a unet_small segmenter (32x32)."""
    import torch

    from lungus.infer.recipes import random_model_file

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("bridge_models")
    return {
        "classifier": random_model_file(
            folder / "classifier.pt",
            "bline2",
            "frame_cnn",
            seed=1,  # its Grad-CAM maps are not all zero (seed 0's are)
            size=32,
            frames=4,
            eval_stride=2,
            model_args={"width": 4},
            name="bridge-cls",
        ),
        "segmenter": random_model_file(
            folder / "segmenter.pt",
            "seg",
            "unet_small",
            size=32,
            model_args={"width": 4, "levels": 2},
            name="bridge-seg",
        ),
    }


@pytest.fixture(scope="session")
def tiny_clip_files(tiny_collection) -> list[Path]:
    """The simulated clips (mp4, 64x64, 8 frames at 25 fps) of the shared tiny collection."""
    from lungus.data.manifest import Manifest

    return Manifest.load(tiny_collection).clip_paths()
