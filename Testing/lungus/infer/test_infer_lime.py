"""LIME through the engine: a small frame CNN trained here on simulated clips puts more LIME weight
on the simulator's B-line truth masks than on the rest of the fan, in the original frames; the
analysis carries LIME maps per frame, reproducibly."""

from __future__ import annotations

import numpy as np
import pytest

from lungus.data.labels.schemes import B_LINE, CONFLUENT
from lungus.data.pipeline.clip_preparation import Preprocessing, prepare_clip
from lungus.infer import Analyzer
from lungus.infer.recipes import recipe_card
from lungus.models.lime import LimeSettings
from lungus.sim.generator import SimulationConfig, simulate_clip

FRAMES, SIZE = 4, 64
SIMULATION = SimulationConfig(n_frames=8, height=96, width=96, probe="convex")
#: Designed states: 0 (A-lines) and 2, 3 (B-lines, confluent), half without B-lines.
STATES = (0, 2, 0, 3)


def simulated(seed: int):
    return simulate_clip(SIMULATION, seed=seed, state=STATES[seed % len(STATES)])


@pytest.fixture(scope="module")
def trained_on_simulated_clips(tmp_path_factory, train_frame_cnn):
    """A frame CNN (64x64, 4-frame windows) trained for 120 steps on 48 simulated clips (~10 s)."""
    card = recipe_card("bline2", "frame_cnn", model_args={"width": 8}, size=(SIZE, SIZE), frames=FRAMES,
                       name="lime-test")
    preprocessing = Preprocessing.from_card(card.preprocessing)
    clips = []
    for seed in range(48):
        sim = simulated(seed)
        clips.append((prepare_clip(sim.clip, preprocessing).frames, int(sim.labels["bline2"] == "present")))

    def batch(rng):
        windows, labels = [], []
        for index in rng.integers(0, len(clips), 16):
            frames, label = clips[index]
            start = rng.integers(0, frames.shape[0] - FRAMES + 1)
            windows.append(frames[start : start + FRAMES])
            labels.append(label)
        return np.stack(windows), labels

    return train_frame_cnn(tmp_path_factory.mktemp("lime") / "model.pt", card, batch, steps=120)


def truth_contrast(analyzer: Analyzer, method: str) -> list[float]:
    """Per B-line frame of unseen simulated clips: the mean map inside the B-line truth mask over
    its mean in the rest of the fan (1: no preference), in the original frames."""
    contrasts = []
    for seed in range(100, 124):
        sim = simulated(seed)
        blines = np.isin(sim.masks, (B_LINE, CONFLUENT))
        if sim.labels["bline2"] != "present" or not blines.any():
            continue
        frame = int(np.flatnonzero(blines.any(axis=(1, 2)))[0])
        explanation = analyzer.explain_frames(analyzer.load(sim.clip), [frame], method, 1)
        heat = explanation.original_map(0)
        rest = sim.clip.fan.mask & ~blines[frame]
        contrasts.append(float(heat[blines[frame]].mean() / max(heat[rest].mean(), 1e-6)))
    return contrasts


def test_lime_weighs_the_b_line_truth_masks_above_the_rest_of_the_fan(trained_on_simulated_clips):
    contrasts = truth_contrast(Analyzer(trained_on_simulated_clips, device="cpu"), "lime")
    # Measured: median 1.8 over 9 frames (Grad-CAM of the same model: 2.0); 1 would be no preference.
    assert len(contrasts) >= 8
    assert float(np.median(contrasts)) > 1.3 and np.mean(np.array(contrasts) > 1) >= 0.7


def test_an_analysis_with_lime_holds_reproducible_maps_per_frame(trained_on_simulated_clips):
    analyzer = Analyzer(trained_on_simulated_clips, device="cpu")
    clip = simulated(101).clip
    settings = LimeSettings(samples=32, superpixels=12)
    first = analyzer.analyse(clip, explain="lime", lime=settings).explanation
    again = analyzer.analyse(clip, explain="lime", lime=settings).explanation
    assert first.method == "lime" and first.target_class == "present"
    assert first.maps.shape == (clip.n_frames, SIZE, SIZE) and 0 <= first.maps.min() and first.maps.max() <= 1
    assert first.maps.max() > 0 and np.array_equal(first.maps, again.maps)


def test_explained_frames_are_the_frames_asked_for(trained_on_simulated_clips):
    analyzer = Analyzer(trained_on_simulated_clips, device="cpu")
    loaded = analyzer.load(simulated(103).clip)
    explanation = analyzer.explain_frames(loaded, [0, 5, 7], "gradcam", 1)
    assert explanation.source_frames.tolist() == [0, 5, 7] and explanation.maps.shape == (3, SIZE, SIZE)
    # Frame 5's map is the slot of frame 5 in the window that holds it nearest its middle.
    alone = analyzer.explain_frames(loaded, [5], "gradcam", 1)
    assert np.array_equal(alone.maps[0], explanation.maps[1])
