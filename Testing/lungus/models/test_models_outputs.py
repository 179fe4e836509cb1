"""Logits are checked before they become answers: finite, and shaped as the model's card says."""

from __future__ import annotations

import math

import pytest
import torch

from lungus.errors import LungUSError
from lungus.infer.recipes import random_model_file
from lungus.models import load_for_inference, load_model_file, save_model_file
from lungus.models.outputs import check_model_output, expected_logits_shape

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def segmenter_path(tmp_path_factory):
    folder = tmp_path_factory.mktemp("outputs")
    return random_model_file(folder / "seg.pt", "seg", "unet_small", size=32, model_args={"width": 4, "levels": 2})


def test_segmenter_logits_must_have_the_cards_classes_at_the_input_size(segmenter_path):
    card = load_model_file(segmenter_path).card
    assert expected_logits_shape(card, (3, 1, 40, 48)) == (3, 6, 40, 48)
    with pytest.raises(LungUSError, match=r"seg\.pt: the model's logits have shape \(3, 6, 20, 24\), not the "
                                          r"\(3, 6, 40, 48\) its card implies"):
        check_model_output(torch.zeros(3, 6, 20, 24), (3, 6, 40, 48), card, segmenter_path, "logits")


def test_an_infinite_value_is_refused(segmenter_path):
    card = load_model_file(segmenter_path).card
    logits = torch.zeros(1, 6, 4, 4)
    logits[0, 2, 1, 1] = -math.inf
    with pytest.raises(LungUSError, match=r"NaN or infinite logits \(1 of 96 values\)"):
        check_model_output(logits, (1, 6, 4, 4), card, segmenter_path, "logits")


def test_load_for_inference_refuses_nan_logits(tmp_path, segmenter_path):
    loaded = load_model_file(segmenter_path)
    with torch.no_grad():
        next(loaded.model.parameters()).fill_(math.nan)
    path = save_model_file(tmp_path / "nan.pt", loaded.model, loaded.card)
    with pytest.raises(LungUSError, match=r"nan\.pt: the model gave NaN or infinite logits"):
        load_for_inference(path)(torch.zeros(2, 1, 32, 32))
