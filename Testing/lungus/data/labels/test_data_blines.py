"""B-line counts, positions, widths, confluence and BLAS from class masks of known geometry."""

from __future__ import annotations

import numpy as np
import pytest

from lungus.data.labels.blines import analyse_masks
from lungus.data.labels.schemes import B_LINE, CONFLUENT, PLEURA, RIB_SHADOW
from lungus.io.clip import FanGeometry
from lungus.io.fan import rectangle_mask, sector_mask
from lungus.sim import SimulationConfig, simulate_clip

SHAPE = (256, 256)
APEX = (-40.0, 128.0)
RADII = (80.0, 320.0)
SECTOR = FanGeometry(
    sector_mask(SHAPE, APEX, (-35.0, 35.0), RADII), "sector", apex=APEX, angles_deg=(-35.0, 35.0), radii=RADII
)
LINEAR = FanGeometry(rectangle_mask(SHAPE, (10, 10, 250, 246)), "linear")
PLEURA_RADII = (120.0, 124.0)


def wedge(angles, radii=(PLEURA_RADII[1], RADII[1])) -> np.ndarray:
    return sector_mask(SHAPE, APEX, angles, radii)


def sector_frame(pleura=(-30.0, 30.0), blines=(), confluent=()) -> np.ndarray:
    """A pleura arc over ``pleura`` degrees with B-line / confluent wedges below it."""
    mask = np.zeros(SHAPE, dtype=np.uint8)
    if pleura is not None:
        mask[wedge(pleura, PLEURA_RADII)] = PLEURA
    for angles in blines:
        mask[wedge(angles)] = B_LINE
    for angles in confluent:
        mask[wedge(angles)] = CONFLUENT
    return mask


def linear_frame(pleura=(20, 220), blines=(), confluent=()) -> np.ndarray:
    """A pleura band at rows 60..63 over columns [pleura) with B-line columns below it."""
    mask = np.zeros(SHAPE, dtype=np.uint8)
    mask[60:64, pleura[0] : pleura[1]] = PLEURA
    for c0, c1 in blines:
        mask[64:250, c0:c1] = B_LINE
    for c0, c1 in confluent:
        mask[64:250, c0:c1] = CONFLUENT
    return mask


def test_sector_blas_is_the_known_share_of_the_pleura():
    analysis = analyse_masks(sector_frame(blines=[(0.0, 15.0), (-20.0, -16.0)]), SECTOR)
    assert analysis.blas[0] == pytest.approx(100 * 19 / 60, abs=1.5)


def test_linear_blas_is_the_known_share_of_the_pleura():
    analysis = analyse_masks(linear_frame(blines=[(50, 100)]), LINEAR)
    assert analysis.blas[0] == pytest.approx(25.0, abs=0.01)
    assert analysis.intercostal_extent[0] == pytest.approx(200.0)


def test_sector_positions_and_widths_are_in_degrees():
    analysis = analyse_masks(sector_frame(blines=[(-20.0, -16.0), (8.0, 12.0)]), SECTOR)
    assert analysis.position_unit == "deg"
    assert analysis.bline_count[0] == 2
    assert analysis.positions[0] == pytest.approx((-18.0, 10.0), abs=0.3)
    assert [r.width for r in analysis.regions[0]] == pytest.approx([4.0, 4.0], abs=0.4)
    assert analysis.position_tolerance == pytest.approx(3.5, abs=0.1)


def test_linear_positions_are_columns():
    analysis = analyse_masks(linear_frame(blines=[(40, 50), (150, 170)]), LINEAR)
    assert analysis.position_unit == "px"
    assert analysis.positions[0] == pytest.approx((44.5, 159.5))
    assert [r.width for r in analysis.regions[0]] == pytest.approx([10.0, 20.0])


def test_confluent_region_counts_by_its_share_of_the_space():
    # Confluent over half the pleura: max(2, round(10 * 0.5)) = 5 B-lines, spread across it.
    analysis = analyse_masks(sector_frame(confluent=[(0.0, 30.0)]), SECTOR)
    assert analysis.bline_count[0] == 5
    assert analysis.confluent_share[0] == pytest.approx(0.5, abs=0.02)
    assert analysis.blas[0] == pytest.approx(50.0, abs=1.5)
    assert analysis.positions[0] == pytest.approx((3.0, 9.0, 15.0, 21.0, 27.0), abs=0.3)
    assert [r.kind for r in analysis.regions[0]] == ["confluent"]


def test_frames_without_pleura_or_blines_have_no_blas():
    masks = np.stack([sector_frame(pleura=None), sector_frame()])
    masks[0][wedge((-10.0, 10.0))] = RIB_SHADOW
    analysis = analyse_masks(masks, SECTOR)
    assert analysis.blas == [None, 0.0]
    assert analysis.bline_count.tolist() == [0, 0]
    assert analysis.top_frame is None and analysis.frames_with_blines == 0


def test_clip_summary_and_top_frame():
    masks = np.stack(
        [
            linear_frame(),
            linear_frame(blines=[(30, 40), (100, 110)]),
            linear_frame(blines=[(30, 40), (100, 110), (150, 160)]),
            linear_frame(blines=[(30, 40), (100, 110), (150, 180)]),
        ]
    )
    summary = analyse_masks(masks, LINEAR).clip_summary()
    assert summary == {
        "bline_count_max": 3,
        "bline_count_mean": 2.0,
        "frames_with_blines": 3,
        "blas_max": 25.0,
        "blas_mean": pytest.approx((0 + 10 + 15 + 25) / 4),
        "top_frame": 3,
    }


def test_pixels_outside_the_fan_are_ignored():
    mask = sector_frame(blines=[(0.0, 5.0)])
    mask[:6, :6] = B_LINE  # a corner outside the fan
    analysis = analyse_masks(mask, SECTOR)
    assert analysis.bline_count[0] == 1


def test_frame_records_carry_the_per_frame_fields():
    record = analyse_masks(linear_frame(blines=[(50, 100)]), LINEAR).frame_records()[0]
    assert record == {"frame": 0, "bline_count": 1, "blas": 25.0, "confluent_share": 0.0, "positions": [74.5]}


@pytest.mark.parametrize(("probe", "state"), [("convex", 1), ("convex", 3), ("linear", 2)])
def test_counts_agree_with_simulator_truth(probe, state):
    sim = simulate_clip(SimulationConfig(n_frames=4, height=96, width=96), seed=5, state=state, probe=probe)
    analysis = analyse_masks(sim.masks, sim.clip.fan)
    assert analysis.bline_count.tolist() == [f.bline_count for f in sim.frames]
    assert analysis.columns == [f.positions for f in sim.frames]
    assert analysis.bline_count.sum() > 0


def test_bad_masks_are_rejected():
    with pytest.raises(ValueError, match="class ids"):
        analyse_masks(np.zeros((2, 3, 4, 5), dtype=np.uint8))
    with pytest.raises(ValueError, match="integer"):
        analyse_masks(np.zeros((2, 8, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="fan mask shape"):
        analyse_masks(np.zeros((2, 8, 8), dtype=np.uint8), LINEAR)
