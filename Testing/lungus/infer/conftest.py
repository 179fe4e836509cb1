"""Fixtures for the inference tests: tiny model files (random weights, valid cards) and clips."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)


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
