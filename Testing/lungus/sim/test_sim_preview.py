"""Contact sheets: frames beside their masks painted in the SEG_CLASSES colours."""

from __future__ import annotations

import numpy as np
import pytest

from lungus.data.schemes import B_LINE, SEG_CLASSES
from lungus.sim.preview import colour_mask, contact_sheet


def test_colour_mask_paints_each_class_in_its_colour_and_leaves_background_grey():
    frame = np.full((10, 10), 100, dtype=np.uint8)
    mask = np.zeros((10, 10), dtype=np.uint8)
    mask[:, 4:6] = B_LINE
    rgb = colour_mask(frame, mask)
    assert (rgb[:, :4] == 100).all()
    green = np.asarray(SEG_CLASSES[B_LINE].rgb, float)
    painted = rgb[0, 4].astype(float)
    assert np.argmax(painted) == np.argmax(green) and not (painted == 100).all()


def test_contact_sheet_lays_out_two_tiles_per_item_with_a_legend():
    frame = np.zeros((32, 48), dtype=np.uint8)
    items = [(frame, frame, f"clip {i}") for i in range(5)]
    sheet = contact_sheet(items, columns=3, tile=40)
    assert sheet.shape[1] == 3 * 2 * 40
    assert sheet.shape[0] > 2 * 40  # two rows of items plus captions and the legend
    assert sheet.dtype == np.uint8 and sheet.shape[2] == 3


def test_contact_sheet_needs_an_item():
    with pytest.raises(ValueError):
        contact_sheet([])
