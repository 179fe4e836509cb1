"""Fixtures of the review tests: small real clips and an empty review folder beside them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def review_clips(tmp_path) -> list[Path]:
    """Three 5-frame 48x40 grey clips written as Slicer volume sequences under tmp_path/scans/."""
    from lungus.io import Clip, write_clip

    rng = np.random.default_rng(0)
    folder = tmp_path / "scans"
    return [
        write_clip(Clip(rng.integers(0, 256, (5, 48, 40), dtype=np.uint8), fps=20.0, spacing_mm=(0.3, 0.3)),
                   folder / f"patient{i}_clip.seq.nrrd")
        for i in range(3)
    ]


@pytest.fixture
def reviews(tmp_path):
    """An empty review folder, tmp_path/REVIEWS."""
    from lungus.review.store import ReviewFolder

    return ReviewFolder(tmp_path / "REVIEWS")
