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

from lungus.data.pipeline.training_sets import EvidenceEvalSet
from lungus.evaluate.summaries import classification_summary, segmentation_summary
from lungus.predict.classifier import ClipClassifier
from lungus.predict.eval_sets import classify_eval_set, segment_clip_evidence, segment_eval_set
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
        """Masks scored against masks, or (an EvidenceEvalSet: clips with clip labels only) the
        clip-level B-line evidence of the predicted masks scored against the clip labels."""
        if isinstance(dataset, EvidenceEvalSet):
            records = segment_clip_evidence(self, model, dataset, device, indices)
            for record in records:
                record["blines"], record["severity"] = dataset.clip_label(record["index"])
            return self.summarise(records, n_boot)
        return self.summarise(segment_eval_set(self, model, dataset, device, indices), n_boot)

    def summarise(self, predictions: list[dict[str, Any]], n_boot: int = 0) -> EvalResult:
        if predictions and "evidence" in predictions[0]:
            return evidence_result(predictions, n_boot)
        metrics, predictions = segmentation_summary(predictions, n_boot)
        score = metrics.get("dice_b_line")
        return EvalResult(metrics, float(score) if score is not None else 0.0, predictions)


#: The clip evidence whose AUC selects a weakly supervised segmenter's epoch (lungus.data.labels.blines).
SELECTION_EVIDENCE = "bline_count_max"


def evidence_result(records: list[dict[str, Any]], n_boot: int = 0) -> EvalResult:
    """Metrics of segment_clip_evidence records that carry their clip's ``blines`` and ``severity``
    labels: each evidence statistic's AUC and Spearman rho (lungus.evaluate.clip_evidence); the
    AUC of the maximum B-line count selects the epoch."""
    from lungus.evaluate.clip_evidence import clip_evidence_metrics, scored_values

    records = sorted(records, key=lambda r: r["index"])
    values = scored_values([r["evidence"] for r in records])  # as `lungus evaluate` scores them
    severity = [r["severity"] for r in records]
    metrics = clip_evidence_metrics([r["patient"] for r in records], values, [r["blines"] for r in records],
                                    None if all(s < 0 for s in severity) else severity, n_boot=n_boot)
    auc = metrics["statistics"][SELECTION_EVIDENCE]["auc"]
    metrics["auc"] = auc  # the epoch-selection score, also shown per epoch
    return EvalResult(metrics, float(auc) if auc is not None else 0.0, records)
