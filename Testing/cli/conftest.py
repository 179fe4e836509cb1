"""Fixtures of the command-line tests (the whole suite's are in Testing/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def simulated_classifier(tiny_models, tmp_path_factory) -> Path:
    """The tiny classifier with the card `lungus train` writes after training on 12 simulated clips."""
    from lungus.models.model_file import load_model_file, save_model_file

    loaded = load_model_file(tiny_models["classifier"])
    card = loaded.card
    card.training_data = {"clips": 12, "patients": 6, "simulated_clips": 12}
    card.extra = {key: value for key, value in card.extra.items() if key != "untrained"}
    return save_model_file(tmp_path_factory.mktemp("simulated") / "sim-trained.pt", loaded.model, card)
