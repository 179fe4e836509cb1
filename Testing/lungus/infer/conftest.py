"""Fixtures for the inference tests: tiny model files (random weights, valid cards) and clips."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

torch.set_num_threads(1)


def _train_frame_cnn(path: Path, card, batch: Callable[[np.random.Generator], tuple[np.ndarray, list[int]]],
                    steps: int) -> Path:
    """Train a width-8 bline2 frame CNN for ``steps`` Adam steps on ``batch(rng)`` -> (windows
    (N, frames, H, W) prepared uint8, labels) and save it with ``card``: a model that has learnt
    something, for the explanation tests (seeded: the same weights every run)."""
    from lungus.models import build_model, save_model_file
    from lungus.models.normalisation import normalise_frames

    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    model = build_model("frame_cnn", 2, width=8)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        windows, labels = batch(rng)
        x = normalise_frames(windows, card.preprocessing["normalisation"]).unsqueeze(1)
        optimiser.zero_grad()
        F.cross_entropy(model(x), torch.as_tensor(labels)).backward()
        optimiser.step()
    return save_model_file(path, model.eval(), card)


@pytest.fixture(scope="session")
def train_frame_cnn():
    """Factory: train_frame_cnn(path, card, batch, steps) -> the saved model file (see _train_frame_cnn)."""
    return _train_frame_cnn


@pytest.fixture
def clip_folder(tmp_path, tiny_clip_paths) -> Path:
    """A copy of six simulated clips (with their fan JSON sidecars) in tmp_path/clips."""
    folder = tmp_path / "clips"
    folder.mkdir()
    for path in tiny_clip_paths[:6]:
        shutil.copy(path, folder / path.name)
        sidecar = path.with_suffix(".json")
        if sidecar.is_file():
            shutil.copy(sidecar, folder / sidecar.name)
    return folder
