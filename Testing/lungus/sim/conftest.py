"""Fixtures for the simulator tests: small simulated clips (real renders, tiny sizes)."""

from __future__ import annotations

import pytest

from lungus.sim.generator import SimulationConfig, simulate_clip

SMALL = SimulationConfig(n_frames=8, height=128, width=128, annotations=False)


@pytest.fixture(scope="session")
def small_config() -> SimulationConfig:
    return SMALL


@pytest.fixture(scope="session")
def make_clip():
    """make_clip(state, probe, seed=0, **config overrides) -> SimulatedClip, cached per session."""
    cache = {}

    def make(state: int, probe: str, seed: int = 0, **overrides):
        key = (state, probe, seed, tuple(sorted(overrides.items())))
        if key not in cache:
            config = SimulationConfig(**{**SMALL.__dict__, **overrides})
            cache[key] = simulate_clip(config, seed=seed, state=state, probe=probe)
        return cache[key]

    return make
