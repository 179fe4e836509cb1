"""The clip generator: determinism, the Clip contract, geometry, patients and configs."""

from __future__ import annotations

import numpy as np
import pytest

from lungus.data.labels.schemes import PLEURA
from lungus.sim.generator import (
    SimulationConfig,
    patient_traits,
    plan_collection,
    simulate_clip,
    simulate_collection,
    simulate_planned,
)

TINY = SimulationConfig(n_frames=4, height=64, width=64)


def test_same_seed_gives_identical_clip_masks_and_labels():
    a = simulate_clip(TINY, seed=5, state=1)
    b = simulate_clip(TINY, seed=5, state=1)
    assert np.array_equal(a.clip.frames, b.clip.frames)
    assert np.array_equal(a.masks, b.masks)
    assert a.labels == b.labels and a.frames == b.frames


def test_different_seeds_give_different_clips():
    a = simulate_clip(TINY, seed=5, state=1)
    b = simulate_clip(TINY, seed=6, state=1)
    assert not np.array_equal(a.clip.frames, b.clip.frames)


def test_clip_follows_the_clip_contract(make_clip):
    sim = make_clip(1, "convex")
    clip = sim.clip
    assert clip.frames.dtype == np.uint8 and clip.frames.shape == (8, 128, 128)
    assert sim.masks.dtype == np.uint8 and sim.masks.shape == clip.frames.shape
    assert clip.fps == 25.0
    assert clip.spacing_mm[0] == pytest.approx(clip.spacing_mm[1]) and 0.1 < clip.spacing_mm[0] < 2.0
    assert len(sim.frames) == clip.n_frames


def test_convex_fan_is_a_sector_with_its_apex_above_the_image(make_clip):
    fan = make_clip(0, "convex").clip.fan
    assert fan.kind == "sector"
    assert fan.apex[0] < 0
    assert fan.angles_deg[0] == pytest.approx(-fan.angles_deg[1])
    assert 0.3 < fan.area_fraction < 0.95


def test_linear_fan_is_a_rectangle(make_clip):
    fan = make_clip(0, "linear").clip.fan
    assert fan.kind == "linear"
    row0, col0, row1, col1 = fan.bbox
    assert fan.mask[row0:row1, col0:col1].all()
    assert fan.mask.sum() == (row1 - row0) * (col1 - col0)


@pytest.mark.parametrize("probe", ["convex", "linear"])
def test_pixels_and_masks_outside_the_fan_are_zero(make_clip, probe):
    sim = make_clip(2, probe)
    outside = ~sim.clip.fan.mask
    assert not sim.clip.frames[:, outside].any()
    assert not sim.masks[:, outside].any()


def test_annotations_are_burned_in_outside_the_fan_only():
    config = SimulationConfig(n_frames=2, height=128, width=128, annotations=True)
    plain_config = SimulationConfig(n_frames=2, height=128, width=128, annotations=False)
    annotated = simulate_clip(config, seed=3, state=0, probe="convex")
    plain = simulate_clip(plain_config, seed=3, state=0, probe="convex")
    fan = annotated.clip.fan.mask
    assert np.array_equal(annotated.clip.frames[:, fan], plain.clip.frames[:, fan])
    assert annotated.clip.frames[:, ~fan].any()


def test_respiration_moves_the_pleura_between_frames():
    config = SimulationConfig(n_frames=25, height=128, width=128, annotations=False)
    sim = simulate_clip(config, seed=2, state=0, probe="linear")
    depths = [np.nonzero((m == PLEURA).any(axis=1))[0].mean() for m in sim.masks]
    assert np.ptp(depths) > 0.5


def test_every_patient_gets_a_clip_and_names_are_unique():
    plan = plan_collection(20, 7, seed=1)
    assert {p.patient for p in plan} == {f"P{i:03d}" for i in range(1, 8)}
    assert len({p.name for p in plan}) == 20


def test_plan_needs_a_clip_per_patient():
    with pytest.raises(ValueError, match="at least one clip per patient"):
        plan_collection(3, 5, seed=0)


def test_clips_of_a_patient_share_its_traits():
    sims = list(simulate_collection(6, 2, seed=4, config=TINY))
    by_patient = {}
    for sim in sims:
        by_patient.setdefault(sim.patient, []).append(sim.traits)
    for traits in by_patient.values():
        assert all(t == traits[0] for t in traits)
    first, second = (traits[0] for traits in by_patient.values())
    assert first.chest_wall_mm != second.chest_wall_mm
    assert patient_traits(4, 0) == by_patient["P001"][0]


def test_a_clip_does_not_depend_on_the_collection_size():
    small = plan_collection(4, 2, seed=9)[0]
    large = plan_collection(9, 2, seed=9)[0]
    assert small.name == large.name == "P001_R1"
    a = simulate_planned(small, TINY, 9)
    b = simulate_planned(large, TINY, 9)
    assert np.array_equal(a.clip.frames, b.clip.frames)


def test_patient_severity_carries_over_to_the_labels():
    """Severe patients' clips are labelled worse than mild patients' (a patient-level effect)."""
    config = SimulationConfig(n_frames=6, height=64, width=64)
    plan = plan_collection(48, 8, seed=0)
    severity = {p: patient_traits(0, p).severity for p in range(8)}
    mild = sorted(severity, key=severity.get)[:3]
    severe = sorted(severity, key=severity.get)[-3:]
    scores = {p: [] for p in mild + severe}
    for planned in plan:
        if planned.patient_index in scores:
            scores[planned.patient_index].append(int(simulate_planned(planned, config, 0).labels["lus4"]))
    assert (
        np.mean([s for p in severe for s in scores[p]]) > np.mean([s for p in mild for s in scores[p]]) + 1.0
    )


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"n_frames": 0}, "n_frames"),
        ({"height": 8}, "height"),
        ({"fps": -1}, "fps"),
        ({"probe": "phased"}, "probe"),
    ],
)
def test_bad_config_says_what_is_wrong(overrides, message):
    with pytest.raises(ValueError, match=message):
        SimulationConfig(**overrides)
