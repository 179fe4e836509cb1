"""The one way from a model card to its predictor: evaluation and inference both feed a model
exactly as its card says. Light to import (the predictors, and torch, load on first use)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lungus.data.labels.tasks import is_ordinal
from lungus.errors import LungUSError

if TYPE_CHECKING:
    from lungus.predict.classifier import ClipClassifier
    from lungus.predict.segmenter import FrameSegmenter



def predictor_from_card(card: Any, eval_batch: int | None = None) -> ClipClassifier | FrameSegmenter:
    """The predictor a model card (lungus.models.model_file.ModelCard) describes.

    A classifier: the card's window, evaluation stride (default half a window), aggregation
    (default max), flip and operating point (recalibration and decision threshold). A segmenter: the classes its labels could show (``label_classes``)
    and its post-processing; a card without post-processing settings predates them, so plain
    argmax, as it was trained. ``eval_batch``: windows or frames per model call (default:
    the predictor's own).
    """
    from lungus.models.registry import SEGMENTER
    from lungus.predict.classifier import ClipClassifier
    from lungus.predict.segmenter import FrameSegmenter

    if card.pretraining is not None:
        raise LungUSError("this model file is a pretrained encoder (lungus pretrain) whose head never learned; "
                          "fine-tune it first: lungus train --init FILE ... (docs/pretraining.md)")
    pre = card.preprocessing
    batch = {} if eval_batch is None else {"eval_batch": eval_batch}
    if card.kind == SEGMENTER:
        extra = card.extra or {}
        post = extra.get("postprocessing", {})
        return FrameSegmenter(card.class_names, normalisation=pre["normalisation"],
                              label_classes=extra.get("label_classes"),
                              min_bline_share=post.get("min_bline_share", 0.0),
                              logit_offsets=post.get("logit_offsets", [0.0] * len(card.class_names)), **batch)
    return ClipClassifier(card.class_names, ordinal=is_ordinal(card.task), window=pre["frames"],
                          stride=pre.get("eval_stride") or max(1, pre["frames"] // 2),
                          aggregation=pre.get("eval_aggregation", "max"), normalisation=pre["normalisation"],
                          flip=bool(pre.get("eval_flip", False)), operating_point=card.decision, **batch)
