"""What differs between training a clip classifier and a frame segmenter.

The loop in :mod:`lungus.train.loop` is the same for both; a task says how a batch
becomes a loss and how a validation set becomes metrics and predictions. How a model is fed
and how its outputs become predictions is the predictor's (:mod:`lungus.predict`), which
evaluation and inference share; a task is a predictor plus what training adds.

Training items are dicts: classification ``{"frames": uint8 (T, H, W), "target": float (K,)}``,
segmentation ``{"image": uint8 (H, W), "mask": int64 (H, W)}``; training sets have
``set_epoch(epoch)`` so their random draws derive from (seed, epoch, index). Evaluation sets:
see :mod:`lungus.predict.eval_sets`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from lungus.evaluate.summaries import classification_summary, segmentation_summary
from lungus.predict.classifier import ClipClassifier
from lungus.predict.eval_sets import classify_eval_set, segment_eval_set
from lungus.predict.segmenter import FrameSegmenter


@dataclass
class EvalResult:
    metrics: dict[str, Any]
    score: float  # higher is better; selects the best epoch
    predictions: list[dict[str, Any]] = field(default_factory=list)


class ClassificationTask(ClipClassifier):
    """A clip classifier's loss over (frames, target) batches and its validation metrics."""

    def loss(self, model: nn.Module, batch: dict[str, Tensor], criterion: nn.Module, device: torch.device) -> Tensor:
        logits = model(self.inputs(batch["frames"], device))
        return criterion(logits, batch["target"].to(device))

    def evaluate(self, model: nn.Module, dataset: Any, device: torch.device, indices: Sequence[int],
                 n_boot: int = 0) -> EvalResult:
        """Metrics on the clips ``indices`` of an evaluation set (all of them on one rank)."""
        return self.summarise(classify_eval_set(self, model, dataset, device, indices), n_boot)

    def summarise(self, predictions: list[dict[str, Any]], n_boot: int = 0) -> EvalResult:
        metrics, predictions = classification_summary(predictions, ordinal=self.ordinal, n_boot=n_boot)
        # AUC selects the epoch; a validation set holding one class has none, then log-loss decides.
        score = metrics["auc"] if metrics.get("auc") is not None else -metrics["loss"]
        return EvalResult(metrics, float(score), predictions)


class SegmentationTask(FrameSegmenter):
    """A frame segmenter's loss over (image, mask) batches and its validation metrics
    (only the frames whose truth is labelled are scored)."""

    def loss(self, model: nn.Module, batch: dict[str, Tensor], criterion: nn.Module, device: torch.device) -> Tensor:
        return criterion(model(self.inputs(batch["image"], device)), batch["mask"].to(device))

    def evaluate(self, model: nn.Module, dataset: Any, device: torch.device, indices: Sequence[int],
                 n_boot: int = 0) -> EvalResult:
        return self.summarise(segment_eval_set(self, model, dataset, device, indices), n_boot)

    def summarise(self, predictions: list[dict[str, Any]], n_boot: int = 0) -> EvalResult:
        metrics, predictions = segmentation_summary(predictions, n_boot)
        score = metrics.get("dice_b_line")
        return EvalResult(metrics, float(score) if score is not None else 0.0, predictions)
