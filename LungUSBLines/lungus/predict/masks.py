"""From a segmenter's logits to finished class masks: the argmax among the classes a model
learned, and small B-line regions dropped."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

#: Predicted B-line regions (discrete and confluent together) smaller than this share of the
#: fan's area are dropped: specks and fragments, not B-lines (a B-line runs from the pleura
#: to the bottom of the fan). Each would count as a B-line; dropping them halved the count
#: error of the recipe in BENCHMARKS.md on held-out simulated patients.
MIN_BLINE_SHARE = 0.01
#: Added to the confluent B-line logit before the argmax. A frame-level model sees a confluent
#: region fading in or out before the truth calls it present (the simulator marks it once half
#: visible), and one spurious confluent region costs two or more B-lines; this margin, chosen
#: on a separate simulated validation collection (BENCHMARKS.md, Segmentation), trades those
#: for a little confluent Dice.
CONFLUENT_LOGIT_OFFSET = -1.5


def class_argmax(logits: Tensor) -> Tensor:
    """(B, K, H, W) -> (B, H, W) uint8 index of the largest logit, the first on ties, as
    ``argmax(dim=1)``. A running maximum over the K channel planes: on the CPU, torch's
    argmax over the strided class axis took 0.9 s of a 100-frame 256x256 clip, this 0.15 s."""
    best = logits[:, 0].clone()
    index = torch.zeros(best.shape, dtype=torch.uint8, device=logits.device)
    for k in range(1, logits.shape[1]):
        plane = logits[:, k]
        index.masked_fill_(plane > best, k)
        best = torch.maximum(best, plane)
    return index


def masks_from_logits(logits: Tensor, logit_offsets: Sequence[float],
                      label_classes: Sequence[int] | None) -> Tensor:
    """(B, K, H, W) logits -> (B, H, W) uint8 class ids: ``logit_offsets`` (one per class)
    added, then the argmax among ``label_classes`` (None: all classes)."""
    if any(logit_offsets):
        logits = logits + torch.tensor(logit_offsets, device=logits.device, dtype=logits.dtype)[:, None, None]
    if label_classes is not None and len(label_classes) < logits.shape[1]:
        keep = torch.tensor(label_classes, device=logits.device)
        return keep[class_argmax(logits.index_select(1, keep)).long()].to(torch.uint8)
    return class_argmax(logits)


def drop_small_blines(masks: np.ndarray, fan_mask: np.ndarray | None, min_share: float) -> np.ndarray:
    """(T, H, W) class masks with B-line regions (8-connected, discrete and confluent together)
    under ``min_share`` of the fan's area set to background."""
    import cv2

    from lungus.data.labels.schemes import B_LINE, BACKGROUND, CONFLUENT

    if min_share <= 0:
        return masks
    area = fan_mask.sum() if fan_mask is not None else masks.shape[1] * masks.shape[2]
    limit = min_share * float(area)
    out = masks.copy()
    for t in range(masks.shape[0]):
        blines = ((masks[t] == B_LINE) | (masks[t] == CONFLUENT)).astype(np.uint8)
        if not blines.any():
            continue
        _, regions, stats, _ = cv2.connectedComponentsWithStats(blines, connectivity=8)
        small = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] < limit) + 1
        if small.size:
            out[t][np.isin(regions, small)] = BACKGROUND
    return out
