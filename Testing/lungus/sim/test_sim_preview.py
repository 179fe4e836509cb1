"""Contact sheets: frames beside their masks painted in the SEG_CLASSES colours, with a legend."""

from __future__ import annotations

import numpy as np
import pytest

from lungus.sim.preview import contact_sheet


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
