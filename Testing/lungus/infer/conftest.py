"""Fixtures for the inference tests: tiny model files (random weights, valid cards) and clips."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from lungus.data.manifest import Manifest
from lungus.infer.recipes import random_model_file

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """A frame_cnn classifier (bline2, 32x32, 4-frame windows, stride 2) and a unet_small
    segmenter (32x32), untrained, saved as model files with the cards training would write."""
    folder = tmp_path_factory.mktemp("tiny_models")
    return {
        "classifier": random_model_file(
            folder / "classifier.pt",
            "bline2",
            "frame_cnn",
            size=32,
            frames=4,
            eval_stride=2,
            model_args={"width": 4},
            name="tiny-cls",
        ),
        "bline3": random_model_file(
            folder / "bline3.pt",
            "bline3",
            "frame_cnn",
            size=32,
            frames=4,
            model_args={"width": 4},
            name="tiny-bline3",
        ),
        "segmenter": random_model_file(
            folder / "segmenter.pt",
            "seg",
            "unet_small",
            size=32,
            model_args={"width": 4, "levels": 2},
            name="tiny-seg",
        ),
    }


@pytest.fixture(scope="session")
def tiny_clip_paths(tiny_collection) -> list[Path]:
    """The 16 mp4 clips (64x64, 8 frames) of the shared simulated collection, manifest order."""
    return Manifest.load(tiny_collection).clip_paths()


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
