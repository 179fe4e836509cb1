"""lungus.train.config.card_settings: a model card read back as the settings that built the model,
so a run starting from its weights (--init) builds the same network and feeds it the same input."""

from __future__ import annotations

import dataclasses

import pytest

from lungus.errors import LungUSError
from lungus.models.model_file import ModelCard
from lungus.models.registry import architecture
from lungus.train.config import TrainConfig, card_settings

NORMALISATION = {"mean": 0.2, "std": 0.3}


def _card(config: TrainConfig, arch: dict) -> ModelCard:
    return ModelCard(task=config.task, class_names=["none", "discrete", "confluent"], architecture=arch,
                     preprocessing=config.card_preprocessing(NORMALISATION), label_source="truth")


def test_a_cards_settings_rebuild_the_same_network_and_input(tmp_path):
    trained = TrainConfig(manifest="m.csv", out=str(tmp_path / "run"), task="bline3", model="frame_cnn",
                          model_args={"width": 4}, size=(48, 64), frames=6, target_fps=15.0, fan_crop=False,
                          eval_aggregation="mean", eval_stride=3, eval_flip=True)
    card = _card(trained, architecture("frame_cnn", width=4))
    again = TrainConfig(manifest="m.csv", out=str(tmp_path / "tuned"), **card_settings(card))
    assert again.card_preprocessing(NORMALISATION) == card.preprocessing
    assert architecture(again.model, **again.model_args) == card.architecture
    assert again.task == "bline3"


def test_settings_a_card_lacks_keep_their_defaults(tmp_path):
    trained = TrainConfig(manifest="m.csv", out=str(tmp_path / "run"), task="bline3", size=(64, 64))
    card = _card(trained, architecture("frame_cnn"))
    older = dataclasses.replace(card, preprocessing={"size": [64, 64], "normalisation": NORMALISATION})
    assert set(card_settings(older)) == {"task", "model", "model_args", "size"}


def test_an_ensemble_cannot_start_a_run(tmp_path):
    trained = TrainConfig(manifest="m.csv", out=str(tmp_path / "run"), task="bline3")
    card = _card(trained, {"name": "ensemble", "args": {"members": []}})
    with pytest.raises(LungUSError, match="an ensemble's weights cannot start a run"):
        card_settings(card)
