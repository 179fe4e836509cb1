"""A trained classifier's card carries an operating point chosen on clips it did not train on."""

import numpy as np
import pytest
import torch

from lungus.evaluate.operating_points import choose_threshold
from lungus.models.model_file import load_model_file
from lungus.predict.eval_sets import classify_eval_set
from lungus.train.config import TrainConfig
from lungus.train.loop import fit
from lungus.train.setup import prepare_run


def _config(manifest, out, **settings):
    return TrainConfig(manifest=str(manifest), out=str(out), model_args={"width": 4}, size=(32, 32), frames=4,
                       epochs=2, batch_size=4, threads=1, seed=4, **settings)


def test_the_threshold_is_chosen_on_the_validation_clips(tiny_collection, tmp_path):
    config = _config(tiny_collection, tmp_path / "run", val_fraction=0.5, threshold_rule="sensitivity:0.75")
    result = fit(config, log=lambda _m: None)
    card = load_model_file(result.model_path).card
    point = card.decision
    assert point.rule == "sensitivity:0.75" and point.chosen_on.startswith("validation split")
    # The same validation clips, scored by the saved model, give the same threshold.
    run = prepare_run(config, log=lambda _m: None)
    model = load_model_file(result.model_path).model
    predictions = classify_eval_set(run.task, model, run.val_set, torch.device("cpu"), range(len(run.val_set)))
    y = np.array([np.argmax(p["target"]) for p in predictions])
    score = np.array([1 - p["probabilities"][0] for p in predictions])
    assert point.threshold == pytest.approx(choose_threshold(y, score, "sensitivity:0.75"))
    assert point.fitted["clips"] == len(predictions) and point.fitted["sensitivity"] >= 0.75


def test_without_validation_clips_the_card_decides_by_the_largest_probability(tiny_collection, tmp_path):
    messages = []
    result = fit(_config(tiny_collection, tmp_path / "run", val_fraction=0), log=messages.append)
    assert load_model_file(result.model_path).card.operating_point == {}
    assert any("no validation clips" in m and "--folds" in m for m in messages)
