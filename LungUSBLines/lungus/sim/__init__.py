"""Simulated lung-ultrasound clips with ground truth, and simulated raters.

    from lungus.sim import SimulationConfig, simulate_clip, write_dataset

    sim = simulate_clip(SimulationConfig(n_frames=32), seed=3, state=1)
    sim.clip          # lungus.io.Clip (frames, fps, spacing_mm, fan)
    sim.masks         # (T, H, W) uint8 class ids (lungus.data.labels.schemes)
    sim.frames        # per-frame truth: bline_count, discrete, confluent_share, positions
    sim.labels        # {"bline2": ..., "bline3": ..., "lus4": ...}

    write_dataset("sim_set", n_clips=60, n_patients=15, seed=0)   # `lungus simulate`

The truth is measured from the rendered masks by the rules every mask follows
(:mod:`lungus.data.labels.bline_rules`, :mod:`lungus.data.labels.blines`); the preview's colours
come from :mod:`lungus.data.labels.mask_colours`. Names are imported on first use, so
``import lungus.sim.raters`` stays light.
"""

from __future__ import annotations

from lungus.lazy import lazy_exports

_EXPORTS = {
    "SimulationConfig": "lungus.sim.generator",
    "SimulatedClip": "lungus.sim.generator",
    "simulate_clip": "lungus.sim.generator",
    "simulate_collection": "lungus.sim.generator",
    "plan_collection": "lungus.sim.generator",
    "PatientTraits": "lungus.sim.traits",
    "sample_patient_traits": "lungus.sim.traits",
    "ZONES": "lungus.sim.traits",
    "write_dataset": "lungus.sim.dataset",
    "read_masks": "lungus.sim.dataset",
    "CLIP_FORMATS": "lungus.sim.dataset",
    "contact_sheet": "lungus.sim.preview",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
