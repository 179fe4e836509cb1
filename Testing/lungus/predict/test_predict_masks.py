"""Segmenter logits to finished class masks: label classes, logit offsets, small B-lines dropped."""

import numpy as np
import torch

from lungus.data.labels.schemes import B_LINE, CONFLUENT, PLEURA, SEG_CLASSES
from lungus.predict.masks import class_argmax, drop_small_blines
from lungus.predict.segmenter import FrameSegmenter


def test_prediction_among_label_classes_only():
    segmenter = FrameSegmenter([c.name for c in SEG_CLASSES], normalisation={"mean": 0.0, "std": 1.0},
                               label_classes=(0, PLEURA, B_LINE))
    logits = torch.zeros(1, 6, 2, 2)
    logits[0, 2] = 9.0  # A-line would win, but the labels never drew A-lines
    logits[0, B_LINE, 0, 0] = 5.0
    assert segmenter.masks_from_logits(logits)[0].tolist() == [[B_LINE, 0], [0, 0]]


def test_small_bline_specks_are_dropped_and_offsets_shift_the_argmax():
    masks = np.zeros((1, 20, 20), np.uint8)
    masks[0, 2:20, 2:5] = B_LINE  # 54 px: a B-line
    masks[0, 10:12, 12:14] = CONFLUENT  # 4 px: a speck
    masks[0, 0, 10] = PLEURA
    cleaned = drop_small_blines(masks, np.ones((20, 20), bool), min_share=0.05)  # 20 px
    assert (cleaned[0, 2:20, 2:5] == B_LINE).all() and not (cleaned == CONFLUENT).any()
    assert cleaned[0, 0, 10] == PLEURA
    assert np.array_equal(drop_small_blines(masks, None, 0.0), masks)

    segmenter = FrameSegmenter([c.name for c in SEG_CLASSES], normalisation={"mean": 0.0, "std": 1.0},
                               logit_offsets=[0, 0, 0, 0, -2.0, 0])
    logits = torch.zeros(1, 6, 1, 2)
    logits[0, CONFLUENT] = torch.tensor([[1.0, 3.0]])  # beats background by 1 and by 3
    assert segmenter.masks_from_logits(logits)[0].tolist() == [[0, CONFLUENT]]


def test_class_argmax_equals_torch_argmax_ties_included():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randint(-2, 3, (3, 6, 17, 9), generator=generator).float()  # many ties
    assert torch.equal(class_argmax(logits), logits.argmax(dim=1).to(torch.uint8))
