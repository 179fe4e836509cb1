"""Class masks drawn in the SEG_CLASSES colours (preview, overlays, segmentation report)."""

from __future__ import annotations

import numpy as np

from lungus.data.labels.mask_colours import colour_mask, coloured_classes
from lungus.data.labels.schemes import B_LINE, SEG_CLASSES


def test_colour_mask_paints_each_class_in_its_colour_and_leaves_background_grey():
    frame = np.full((10, 10), 100, dtype=np.uint8)
    mask = np.zeros((10, 10), dtype=np.uint8)
    mask[:, 4:6] = B_LINE
    rgb = colour_mask(frame, mask)
    assert (rgb[:, :4] == 100).all()
    green = np.asarray(SEG_CLASSES[B_LINE].rgb, float)
    painted = rgb[0, 4].astype(float)
    assert np.argmax(painted) == np.argmax(green) and not (painted == 100).all()


def test_every_class_but_the_background_has_its_own_colour():
    colours = [seg_class.rgb for seg_class in coloured_classes()]
    assert [seg_class.id for seg_class in coloured_classes()] == [c.id for c in SEG_CLASSES if c.id != 0]
    assert len(set(colours)) == len(colours)
