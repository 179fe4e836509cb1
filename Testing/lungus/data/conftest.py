"""Fixtures for the manifest tests: real CSV files and tiny real clip files in tmp_path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest


def write_tiny_clip(path: Path) -> Path:
    """A 2-frame 8x8 uint8 clip saved as .npy (the smallest real clip file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.full((2, 8, 8), 100, dtype=np.uint8))
    return path


@pytest.fixture
def write_manifest(tmp_path):
    """write_manifest(csv_text, clips=(...), name="manifest.csv") -> path of the CSV.

    Writes each clip (relative to the CSV's folder) as a tiny .npy file, then the CSV text
    (dedented) as it is, so every test controls the exact bytes of the manifest.
    """

    def write(text: str, clips=(), name: str = "manifest.csv") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        for clip in clips:
            write_tiny_clip(path.parent / clip)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    return write
