"""Class masks drawn in their colours (the ``rgb`` of lungus.data.labels.schemes.SEG_CLASSES).

One look for every mask a user sees: the simulator's preview, inference overlays and the
segmentation report.
"""

from __future__ import annotations

import numpy as np

from lungus.data.labels.schemes import SEG_CLASSES, SegClass


def coloured_classes() -> tuple[SegClass, ...]:
    """The classes drawn in a colour (the background has none), in class-id order."""
    return tuple(seg_class for seg_class in SEG_CLASSES if seg_class.rgb is not None)


def colour_mask(frame: np.ndarray, mask: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """(H, W, 3) RGB: the grey frame with each class painted in its SEG_CLASSES colour."""
    rgb = np.repeat(frame[..., None], 3, axis=2).astype(np.float32)
    for seg_class in coloured_classes():
        where = mask == seg_class.id
        if where.any():
            rgb[where] = (1 - alpha) * rgb[where] + alpha * np.asarray(seg_class.rgb, np.float32)
    return np.clip(rgb, 0, 255).astype(np.uint8)
