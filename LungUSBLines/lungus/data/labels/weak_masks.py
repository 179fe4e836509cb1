"""Clip labels as weak segmentation labels: a segmenter taught by clips that have no B-line masks.

Real clips seldom come with B-line masks but often with a clip label, B-lines present or absent
(docs/segmenter-weak-labels.md). Both say something about every frame's pixels:

- a clip **without** B-lines has no B-line pixel anywhere: each fan pixel is "not a B-line"
  (it may be pleura, A-line, rib shadow or background; which one, the label does not say);
- a clip **with** B-lines shows them in its frames: somewhere in each frame's fan there are
  B-line pixels (where, the label does not say; B-lines flicker, so a few frames of such a clip
  show none, a label noise the loss tolerates).

The training loop carries labels as per-pixel masks, so these two statements travel as two mask
values beside the class ids and IGNORE_INDEX: augmentation moves them with the image, the
Dice + cross-entropy terms ignore them, and the weak term of :class:`lungus.train.losses.DiceCELoss`
reads them. Pixels outside the fan are background, as in any prepared mask.

The label source ``weak:SOURCE`` (SOURCE: any bline2 label source, e.g. ``bline2`` or
``expert:NAME``) trains a segmenter so; rows that have a mask file keep their dense masks, so
simulated clips with their truth and real clips with their labels can train together.
"""

from __future__ import annotations

import numpy as np

# Beside the class ids (0-5) and IGNORE_INDEX (255, lungus.data.labels.annotation_labels).
#: Mask value: "no B-line at this pixel" (a pixel of a clip labelled without B-lines).
NOT_BLINE = 254
#: Mask value: "this frame has B-line pixels among the pixels of this value" (a clip with B-lines).
BLINES_SOMEWHERE = 253
WEAK_VALUES = (BLINES_SOMEWHERE, NOT_BLINE)
#: The label-source prefix that asks for weak labels.
WEAK_PREFIX = "weak:"


def parse_weak_source(label_source: str) -> str | None:
    """SOURCE of ``weak:SOURCE`` (the clip label source the weak masks come from); None for any
    other label source."""
    if not label_source.startswith(WEAK_PREFIX):
        return None
    return label_source[len(WEAK_PREFIX):].strip()


def weak_label_masks(fan_mask: np.ndarray, n_frames: int, blines_present: bool) -> np.ndarray:
    """uint8 (T, H, W) masks for a clip with this label: each fan pixel NOT_BLINE (no B-lines) or
    BLINES_SOMEWHERE (B-lines), background outside the fan."""
    value = BLINES_SOMEWHERE if blines_present else NOT_BLINE
    frame = np.where(np.asarray(fan_mask, dtype=bool), np.uint8(value), np.uint8(0))
    return np.repeat(frame[None], n_frames, axis=0)
