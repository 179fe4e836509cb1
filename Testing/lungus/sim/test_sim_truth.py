"""Rendered clips get the truth the B-line rules give their masks, and their designed labels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lungus.data.labels.schemes import B_LINE, CONFLUENT


def test_rendered_counts_match_the_mask_instances(make_clip):
    sim = make_clip(1, "convex")
    assert sim.counts.max() >= 1
    for mask, truth in zip(sim.masks, sim.frames):
        n_components = cv2.connectedComponents((mask == B_LINE).astype(np.uint8), connectivity=8)[0] - 1
        assert truth.discrete == n_components == truth.bline_count
        assert not (mask == CONFLUENT).any()


def test_rendered_confluent_counts_follow_the_share_rule(make_clip):
    sim = make_clip(3, "linear", seed=1)
    confluent_frames = [f for f in sim.frames if f.confluent_regions]
    assert confluent_frames
    for truth in confluent_frames:
        assert truth.bline_count == truth.discrete + max(2, round(10 * truth.confluent_share))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_designed_states_0_and_1_get_their_labels(seed):
    from lungus.sim.generator import SimulationConfig, simulate_clip

    config = SimulationConfig(n_frames=12, height=96, width=96, annotations=False)
    normal = simulate_clip(config, seed=seed, state=0)
    discrete = simulate_clip(config, seed=seed, state=1)
    assert normal.labels == {"bline2": "absent", "bline3": "none", "lus4": "0"}
    assert discrete.labels == {"bline2": "present", "bline3": "discrete", "lus4": "1"}
