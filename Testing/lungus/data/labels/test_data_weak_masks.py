"""Clip labels as weak segmentation masks (lungus.data.labels.weak_masks)."""

import numpy as np

from lungus.data.labels.annotation_labels import IGNORE_INDEX
from lungus.data.labels.schemes import SEG_CLASSES
from lungus.data.labels.weak_masks import BLINES_SOMEWHERE, NOT_BLINE, parse_weak_source, weak_label_masks


def test_weak_values_are_neither_classes_nor_ignored():
    values = {BLINES_SOMEWHERE, NOT_BLINE}
    assert len(values) == 2
    assert not values & ({c.id for c in SEG_CLASSES} | {IGNORE_INDEX})


def test_a_clip_without_blines_marks_every_fan_pixel_not_bline():
    fan = np.zeros((5, 6), bool)
    fan[1:4, 2:5] = True
    masks = weak_label_masks(fan, 3, blines_present=False)
    assert masks.shape == (3, 5, 6) and masks.dtype == np.uint8
    assert (masks[:, fan] == NOT_BLINE).all() and (masks[:, ~fan] == 0).all()


def test_a_clip_with_blines_marks_its_fan_blines_somewhere():
    fan = np.ones((4, 4), bool)
    assert (weak_label_masks(fan, 2, blines_present=True) == BLINES_SOMEWHERE).all()


def test_only_weak_sources_parse():
    assert parse_weak_source("weak:bline2") == "bline2"
    assert parse_weak_source("weak:expert:ann") == "expert:ann"
    assert parse_weak_source("truth") is None
    assert parse_weak_source("annotations:tom") is None
