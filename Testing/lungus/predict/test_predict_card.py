"""predictor_from_card: the one way from a model card to the predictor evaluation and inference run."""

import dataclasses

from lungus.data.labels.schemes import B_LINE, BACKGROUND, CONFLUENT, PLEURA
from lungus.models.model_file import load_model_file
from lungus.predict.card import predictor_from_card
from lungus.predict.masks import CONFLUENT_LOGIT_OFFSET, MIN_BLINE_SHARE


def test_a_classifier_card_gives_its_windows_and_ordering(tiny_models):
    binary = predictor_from_card(load_model_file(tiny_models["classifier"]).card)
    assert (binary.kind, binary.window, binary.stride, binary.aggregation, binary.ordinal) == (
        "classification", 4, 2, "max", False)
    severity = predictor_from_card(load_model_file(tiny_models["bline3"]).card, eval_batch=3)
    assert severity.ordinal and severity.stride == 2 and severity.eval_batch == 3  # stride: half a window


def test_a_segmenter_card_gives_its_label_classes_and_post_processing(tiny_models):
    card = load_model_file(tiny_models["segmenter"]).card
    segmenter = predictor_from_card(card)
    assert segmenter.kind == "segmentation" and segmenter.label_classes is None
    assert segmenter.min_bline_share == MIN_BLINE_SHARE and segmenter.logit_offsets[CONFLUENT] == CONFLUENT_LOGIT_OFFSET
    labelled = dataclasses.replace(card, extra={**card.extra, "label_classes": [B_LINE, BACKGROUND, PLEURA]})
    assert predictor_from_card(labelled).label_classes == (BACKGROUND, PLEURA, B_LINE)


def test_a_card_without_post_processing_predates_it_plain_argmax(tiny_models):
    card = load_model_file(tiny_models["segmenter"]).card
    old = dataclasses.replace(card, extra={})
    segmenter = predictor_from_card(old)
    assert segmenter.min_bline_share == 0.0 and not any(segmenter.logit_offsets)
