"""The B-line rules every mask follows: counting per frame (lungus.data.labels.blines) and clip labels
(lungus.data.labels.bline_rules)."""

from __future__ import annotations

import numpy as np
import pytest

from lungus.data.labels.bline_rules import (
    FrameTruth,
    clip_labels,
    confluent_instance,
    discrete_instance,
    frame_truth,
)
from lungus.data.labels.blines import clip_instances, count_blines, masks_truth
from lungus.data.labels.schemes import B_LINE, CONFLUENT, PLEURA
from lungus.io.clip import FanGeometry
from lungus.io.fan import sector_mask


def _linear_mask(bline_columns=(), confluent=None, width=100, pleura=(0, 100)):
    """A 60 x width mask: pleural line at row 10 over ``pleura`` columns, artefacts below."""
    mask = np.zeros((60, width), dtype=np.uint8)
    mask[10:12, pleura[0] : pleura[1]] = PLEURA
    for c0, c1 in bline_columns:
        mask[12:, c0:c1] = B_LINE
    if confluent is not None:
        mask[12:, confluent[0] : confluent[1]] = CONFLUENT
    return mask


def test_each_discrete_bline_counts_one():
    mask = _linear_mask([(10, 14), (40, 45), (70, 73)])
    assert count_blines(mask) == 3


def test_an_empty_frame_counts_zero():
    assert count_blines(_linear_mask()) == 0


def test_confluent_region_counts_ten_times_its_share_of_the_intercostal_space():
    # 40 of 100 pleura columns covered -> 4 B-lines.
    assert count_blines(_linear_mask(confluent=(30, 70))) == 4
    # A white screen over the whole space counts 10.
    assert count_blines(_linear_mask(confluent=(0, 100))) == 10


def test_a_narrow_confluent_region_counts_at_least_two():
    assert count_blines(_linear_mask(confluent=(30, 35))) == 2


def test_share_is_relative_to_the_visible_pleura_not_the_image():
    # Pleura visible over 50 columns (ribs hide the rest): 25 columns is half the space.
    assert count_blines(_linear_mask(confluent=(30, 55), pleura=(20, 70))) == 5


def test_discrete_and_confluent_counts_add_up():
    mask = _linear_mask([(5, 9), (90, 94)], confluent=(30, 60))
    (instances,) = clip_instances(mask)
    assert [i.kind for i in instances] == ["discrete", "confluent", "discrete"]
    assert sum(i.count for i in instances) == count_blines(mask) == 2 + 3


def test_positions_list_one_column_per_counted_bline():
    mask = _linear_mask([(10, 15)], confluent=(40, 80))
    (truth,) = masks_truth(mask[None])
    assert len(truth.positions) == truth.bline_count == 1 + 4
    assert truth.positions[0] == pytest.approx(12.0)
    assert all(40 <= p < 80 for p in truth.positions[1:])


def test_sector_share_is_measured_in_angle_so_widening_with_depth_does_not_count():
    """A confluent sector spanning half the fan's angle counts 5 even though it widens with depth."""
    shape, apex, radii = (120, 160), (-60.0, 79.5), (70.0, 175.0)
    fan_mask = sector_mask(shape, apex, (-30.0, 30.0), radii)
    fan = FanGeometry(fan_mask, "sector", apex=apex, angles_deg=(-30.0, 30.0), radii=radii)
    rows, cols = np.mgrid[0:120, 0:160]
    radius = np.hypot(rows - apex[0], cols - apex[1])
    angle = np.degrees(np.arctan2(cols - apex[1], rows - apex[0]))
    mask = np.zeros(shape, dtype=np.uint8)
    mask[fan_mask & (radius >= 80) & (radius < 83)] = PLEURA
    mask[fan_mask & (radius >= 83) & (angle >= -15) & (angle < 15)] = CONFLUENT
    assert count_blines(mask, fan) == 5


def test_a_confluent_instance_spreads_its_count_evenly_across_its_top():
    instance = confluent_instance(first=0.0, last=40.0, column=20.0, share=0.4)
    assert (instance.kind, instance.count) == ("confluent", 4)
    assert instance.positions == (5.0, 15.0, 25.0, 35.0)
    assert confluent_instance(0.0, 4.0, 2.0, share=0.04).count == 2


def test_frame_truth_adds_the_instances_of_a_frame():
    # A confluent region over 30 % of the space stands for 3 B-lines across columns 10..30.
    truth = frame_truth([discrete_instance(3.0), confluent_instance(10.0, 30.0, 20.0, 0.3)])
    assert (truth.bline_count, truth.discrete, truth.confluent_regions, truth.confluent_share) == (
        4,
        1,
        1,
        0.3,
    )
    assert truth.positions == pytest.approx((3.0, 10.0 + 10 / 3, 20.0, 30.0 - 10 / 3))


def _frames(n, count=0, confluent=0, share=0.0):
    return [FrameTruth(count, count if not confluent else 0, confluent, share) for _ in range(n)]


def test_label_none_when_blines_show_in_under_30_percent_of_frames():
    frames = _frames(8) + _frames(2, count=1)
    assert clip_labels(frames) == {"bline2": "absent", "bline3": "none", "lus4": "0"}


def test_label_discrete_when_blines_show_in_30_percent_of_frames():
    frames = _frames(7) + _frames(3, count=2)
    assert clip_labels(frames) == {"bline2": "present", "bline3": "discrete", "lus4": "1"}


def test_label_confluent_when_confluence_shows_in_30_percent_of_frames():
    frames = _frames(7, count=1) + _frames(3, count=3, confluent=1, share=0.3)
    assert clip_labels(frames) == {"bline2": "present", "bline3": "confluent", "lus4": "2"}


def test_white_lung_is_lus_3():
    frames = _frames(10, count=7, confluent=1, share=0.7)
    assert clip_labels(frames)["lus4"] == "3"


def test_consolidation_sets_lus_2_when_small_and_3_when_large():
    assert clip_labels(_frames(10), consolidation_mm=6.0)["lus4"] == "2"
    assert clip_labels(_frames(10), consolidation_mm=20.0)["lus4"] == "3"
    assert clip_labels(_frames(10), consolidation_mm=6.0)["bline3"] == "none"
