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


