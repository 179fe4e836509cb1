"""The masks agree with the image: each class looks the way its echo should at the same depth."""

from __future__ import annotations

import numpy as np
import pytest

from lungus.data.labels.schemes import A_LINE, B_LINE, BACKGROUND, CONFLUENT, PLEURA, RIB_SHADOW


def _row_band_contrast(sim, target: int, reference, min_pixels: int = 8) -> list[float]:
    """Per frame and 8-row band: mean grey of ``target`` pixels minus mean grey of
    ``reference`` pixels (inside the fan, below the pleura) in the same rows."""
    differences = []
    fan = sim.clip.fan.mask
    for frame, mask in zip(sim.clip.frames.astype(float), sim.masks):
        pleura_rows = np.nonzero((mask == PLEURA).any(axis=1))[0]
        start = int(pleura_rows.max()) + 3 if pleura_rows.size else 0
        for row in range(start, frame.shape[0] - 8, 8):
            band = slice(row, row + 8)
            m, f = mask[band], frame[band]
            is_target = m == target
            is_reference = np.isin(m, reference) & fan[band]
            if is_target.sum() >= min_pixels and is_reference.sum() >= min_pixels:
                differences.append(f[is_target].mean() - f[is_reference].mean())
    return differences


@pytest.mark.parametrize("probe", ["convex", "linear"])
def test_blines_are_brighter_than_the_lung_beside_them(make_clip, probe):
    diffs = _row_band_contrast(make_clip(1, probe), B_LINE, [BACKGROUND, A_LINE])
    assert len(diffs) >= 10
    assert np.median(diffs) > 15 and np.mean(np.asarray(diffs) > 0) > 0.9


def test_confluent_area_is_brighter_than_the_lung_beside_it(make_clip):
    sim = make_clip(2, "convex", seed=3)
    assert (sim.masks == CONFLUENT).any()
    diffs = _row_band_contrast(sim, CONFLUENT, [BACKGROUND, A_LINE])
    assert np.median(diffs) > 15


@pytest.mark.parametrize("probe", ["convex", "linear"])
def test_rib_shadows_are_darker_than_the_lung_beside_them(make_clip, probe):
    # Some clips show no rib (an intercostal view): take the first seed that shows one.
    sim = next(
        s for s in (make_clip(0, probe, seed=seed) for seed in range(10)) if (s.masks == RIB_SHADOW).any()
    )
    diffs = _row_band_contrast(sim, RIB_SHADOW, [BACKGROUND, A_LINE])
    # Deep down the lung haze fades too, so the contrast is largest under the pleura.
    assert np.mean(np.asarray(diffs) < 0) > 0.9
    assert np.median(diffs) < -10


def test_a_lines_are_brighter_than_the_lung_between_them(make_clip):
    sim = make_clip(0, "linear", seed=5)
    assert (sim.masks == A_LINE).any()
    diffs = _row_band_contrast(sim, A_LINE, [BACKGROUND], min_pixels=20)
    assert np.median(diffs) > 5


@pytest.mark.parametrize("probe", ["convex", "linear"])
def test_pleural_line_is_the_brightest_structure_near_its_depth(make_clip, probe):
    sim = make_clip(0, probe, seed=6)
    frames = sim.clip.frames.astype(float)
    pleura = sim.masks == PLEURA
    rows = np.nonzero(pleura.any(axis=(0, 2)))[0]
    above = np.zeros_like(pleura)
    above[:, max(rows.min() - 12, 0) : rows.min() - 3] = True
    above &= sim.clip.fan.mask & (sim.masks == BACKGROUND)
    assert frames[pleura].mean() > frames[above].mean() + 20


def test_blines_come_and_go_and_their_masks_follow(make_clip):
    """A B-line's mask appears only in frames where the artefact is visible in the image."""
    sim = make_clip(1, "convex", seed=0, n_frames=40)
    shown = np.array([(m == B_LINE).any() for m in sim.masks])
    assert shown.any()
    counts = sim.counts
    assert counts.min() < counts.max()  # at least one B-line comes or goes
