"""lungus.sim.fitted: the fit file and what a fit does to a simulated clip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lungus.errors import LungUSError
from lungus.sim.fitted import LEVELS, SimulatorFit, read_fit, write_fit
from lungus.sim.generator import SimulationConfig, simulate_clip, simulate_collection

TINY = SimulationConfig(n_frames=3, height=64, width=64, probe="convex", annotations=False)


def a_fit() -> SimulatorFit:
    gain = tuple(float(v) for v in np.linspace(-4.0, 6.0, len(LEVELS)))
    return SimulatorFit({"gain_db": gain, "half_angle_deg": (30.0,) * len(LEVELS)},
                        {"fitted_on": {"n_clips": 3}})


def test_a_fit_reads_back_as_written(tmp_path):
    written = a_fit()
    fit = read_fit(write_fit(written, tmp_path / "fit.json"))
    assert fit.settings == written.settings and fit.record == written.record
    assert fit.path == str(tmp_path / "fit.json")


def write_record(path, change):
    record = a_fit().to_record()
    change(record)
    path.write_text(json.dumps(record))
    return path


@pytest.mark.parametrize("change, problem", [
    (lambda r: r.update(format="something-else"), "not a simulator fit"),
    (lambda r: r.update(version=99), "simulator fit version 99"),
    (lambda r: r.update(settings={}), "has no settings"),
    (lambda r: r["settings"].update(loudness=[0.0] * 21), "unknown control 'loudness'"),
    (lambda r: r["settings"].update(gain_db=[1.0, 0.0] + [0.0] * 19), "non-decreasing"),
    (lambda r: r["settings"].update(gain_db=[0.0] * 5), "21 finite"),
])
def test_a_bad_fit_is_one_line_naming_the_file(tmp_path, change, problem):
    path = write_record(tmp_path / "fit.json", change)
    with pytest.raises(LungUSError, match=problem) as error:
        read_fit(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_missing_or_broken_fit_file_is_one_line_naming_the_file(tmp_path):
    with pytest.raises(LungUSError, match="fit not found"):
        read_fit(tmp_path / "nowhere.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(LungUSError, match=f"{broken}.*invalid JSON"):
        read_fit(broken)


def test_without_a_fit_the_simulator_draws_nothing_more():
    plain = SimulationConfig(n_frames=3, height=64, width=64, probe="convex", annotations=False, fit=None)
    assert np.array_equal(simulate_clip(plain, seed=4).clip.frames, simulate_clip(TINY, seed=4).clip.frames)


def test_a_gain_fit_changes_the_image_but_not_the_scene():
    fit = SimulatorFit.constant({"gain_db": 12.0})
    plain, fitted = simulate_clip(TINY, seed=2), simulate_clip(SimulationConfig(**{**TINY.__dict__, "fit": fit}), seed=2)
    assert np.array_equal(plain.masks, fitted.masks) and plain.labels == fitted.labels
    assert fitted.clip.frames[:, plain.clip.fan.mask].mean() > plain.clip.frames[:, plain.clip.fan.mask].mean() + 20


def test_a_geometry_fit_sets_the_fan():
    fit = SimulatorFit.constant({"apex_frac": -0.5, "top_frac": 0.0, "bottom_frac": 1.0, "half_angle_deg": 25.0})
    fan = simulate_clip(SimulationConfig(**{**TINY.__dict__, "fit": fit}), seed=1).clip.fan
    assert fan.apex[0] == pytest.approx(-32.0) and fan.angles_deg == (-25.0, 25.0)
    assert fan.radii == pytest.approx((32.0, 96.0))


def test_each_clip_of_a_collection_draws_its_own_settings():
    fit = SimulatorFit({"half_angle_deg": tuple(np.linspace(20.0, 40.0, len(LEVELS)))})
    config = SimulationConfig(**{**TINY.__dict__, "fit": fit})
    angles = {sim.clip.fan.angles_deg[1] for sim in simulate_collection(4, 2, seed=0, config=config)}
    assert len(angles) == 4 and all(20.0 <= a <= 40.0 for a in angles)


def test_a_fit_of_the_wrong_type_is_refused():
    with pytest.raises(ValueError, match="SimulatorFit"):
        SimulationConfig(fit={"gain_db": [0.0] * 21})


def a_scene(state: int):
    from lungus.sim.generator import simulate_scene
    from lungus.sim.traits import sample_patient_traits

    traits = sample_patient_traits("P001", np.random.default_rng(0))
    return simulate_scene(traits, "R1", TINY, np.random.default_rng(1), state=state)


def test_a_darker_lung_keeps_its_b_lines_contrast_over_the_haze():
    scene = a_scene(state=1)
    darker = SimulatorFit.apply(scene, {"lung_db": -10.0})
    assert scene.blines and darker.haze_db == pytest.approx(scene.haze_db - 10.0)
    assert [b.gain_db for b in darker.blines] == pytest.approx([b.gain_db - 10.0 for b in scene.blines])


def test_an_artefact_fit_dims_the_b_lines_but_not_the_haze():
    scene = a_scene(state=1)
    dimmer = SimulatorFit.apply(scene, {"artefact_db": -6.0})
    assert scene.blines and dimmer.haze_db == scene.haze_db
    assert [b.gain_db for b in dimmer.blines] == pytest.approx([b.gain_db - 6.0 for b in scene.blines])


def test_an_artefact_fit_adds_to_the_lungs_shift_of_the_confluent_echoes():
    scene = a_scene(state=3)
    shifted = SimulatorFit.apply(scene, {"lung_db": -4.0, "artefact_db": -3.0})
    assert scene.confluent and shifted.haze_db == pytest.approx(scene.haze_db - 4.0)
    assert [c.gain_db for c in shifted.confluent] == pytest.approx([c.gain_db - 7.0 for c in scene.confluent])


def test_a_fit_without_the_artefact_control_draws_as_before_it():
    """artefact_db is drawn last: a fit made before it gives its clips the same settings."""
    gain = SimulatorFit({"gain_db": tuple(float(v) for v in np.linspace(-4.0, 6.0, len(LEVELS)))})
    both = SimulatorFit({**gain.settings, "artefact_db": tuple(float(v) for v in np.linspace(-9, 0, len(LEVELS)))})
    drawn, drawn_with = gain.draw(np.random.default_rng(5)), both.draw(np.random.default_rng(5))
    assert drawn_with["gain_db"] == drawn["gain_db"] and "artefact_db" not in drawn


def test_no_motion_stops_breathing_sliding_and_speckle_renewal():
    still = SimulatorFit.apply(a_scene(state=0), {"motion": 0.0})
    assert not still.resp.any() and not still.sliding.any()
    assert still.lung_decorrelation == 0 and still.tissue_decorrelation == 0


def test_a_fit_made_for_another_size_or_probe_says_so():
    fit = SimulatorFit({"gain_db": (0.0,) * len(LEVELS)}, {"simulation": {"size": [256, 256], "probe": "convex"}},
                       "fit.json")
    assert fit.size_warning(256, 256, "convex") is None
    assert fit.size_warning(128, 128, "convex") == "the simulator fit fit.json was made for 256x256 clips, not 128x128"
    assert "made for convex probes, not mixed" in fit.size_warning(256, 256, "mixed")
