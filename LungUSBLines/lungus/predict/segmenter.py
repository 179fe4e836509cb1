"""A frame segmenter's predictions: class masks from frames, finished as the model card says."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lungus.models.normalisation import normalise_frames
from lungus.predict.masks import CONFLUENT_LOGIT_OFFSET, MIN_BLINE_SHARE, drop_small_blines, masks_from_logits


class FrameSegmenter:
    """How a frame segmenter is fed and how its logits become class masks.

    ``label_classes``: the classes the training labels could show (None: all). A model trained
    on labels that never draw a class (AnnotateUltrasound: no A-lines, no rib shadows) never
    learned it, so predictions choose among ``label_classes`` only. ``min_bline_share``:
    predicted B-line regions smaller than this share of the fan are dropped
    (:func:`lungus.predict.masks.drop_small_blines`); ``logit_offsets`` (one per class, default
    :data:`~lungus.predict.masks.CONFLUENT_LOGIT_OFFSET` for the confluent class) are added to
    the logits before the argmax. All three are recorded in the model card (:meth:`card_extra`).
    """

    kind = "segmentation"

    def __init__(self, class_names: Sequence[str], *, normalisation: dict[str, float], eval_batch: int = 16,
                 label_classes: Sequence[int] | None = None, min_bline_share: float = MIN_BLINE_SHARE,
                 logit_offsets: Sequence[float] | None = None) -> None:
        from lungus.data.labels.schemes import CONFLUENT

        if not 0 <= min_bline_share < 1:
            raise ValueError(f"min_bline_share must be in [0, 1), got {min_bline_share}")
        self.min_bline_share = float(min_bline_share)
        self.class_names = tuple(class_names)
        self.n_classes = len(self.class_names)
        if logit_offsets is None:
            logit_offsets = [0.0] * self.n_classes
            if self.n_classes > CONFLUENT:
                logit_offsets[CONFLUENT] = CONFLUENT_LOGIT_OFFSET
        if len(logit_offsets) != self.n_classes:
            raise ValueError(f"need one logit offset per class ({self.n_classes}), got {len(logit_offsets)}")
        self.logit_offsets = tuple(float(v) for v in logit_offsets)
        self.normalisation = normalisation
        self.eval_batch = eval_batch
        self.label_classes = None if label_classes is None else tuple(sorted({int(c) for c in label_classes}))
        if self.label_classes is not None and not set(self.label_classes) <= set(range(self.n_classes)):
            raise ValueError(f"label_classes {self.label_classes} are not all ids of {self.n_classes} classes")

    def card_extra(self) -> dict[str, Any]:
        """What a model card records so that :func:`lungus.predict.card.predictor_from_card`
        rebuilds this segmenter."""
        extra: dict[str, Any] = {"postprocessing": {"min_bline_share": self.min_bline_share,
                                                    "logit_offsets": list(self.logit_offsets)}}
        if self.label_classes is not None:
            extra["label_classes"] = list(self.label_classes)
        return extra

    def inputs(self, images: Tensor, device: torch.device) -> Tensor:
        """uint8 (B, H, W) -> normalised float (B, 1, H, W) on the device."""
        return normalise_frames(images.to(device, non_blocking=True), self.normalisation).unsqueeze(1)

    def masks_from_logits(self, logits: Tensor) -> Tensor:
        """(B, K, H, W) logits -> (B, H, W) uint8 class ids, among ``label_classes`` when set."""
        return masks_from_logits(logits, self.logit_offsets, self.label_classes)

    def postprocess(self, masks: np.ndarray, fan_mask: np.ndarray | None = None) -> np.ndarray:
        """Class masks as the model card says to finish them (for runtimes that produce the masks
        themselves, e.g. ONNX Runtime: ``postprocess(masks_from_logits(logits), fan)``)."""
        return drop_small_blines(masks, fan_mask, self.min_bline_share)

    @torch.no_grad()
    def predict_masks(self, model: nn.Module, frames: np.ndarray, device: torch.device,
                      fan_mask: np.ndarray | None = None) -> np.ndarray:
        """uint8 (T, H, W) frames -> uint8 (T, H, W) class masks, small B-line specks dropped
        (``fan_mask``: the fan in the frames, for the speck size; default the whole frame)."""
        out = []
        for start in range(0, frames.shape[0], self.eval_batch):
            logits = model(self.inputs(torch.from_numpy(frames[start : start + self.eval_batch]), device))
            out.append(self.masks_from_logits(logits).cpu().numpy())
        return self.postprocess(np.concatenate(out), fan_mask)
