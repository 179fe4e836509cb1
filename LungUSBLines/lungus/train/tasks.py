"""What differs between training a clip classifier and a frame segmenter.

The loop in :mod:`lungus.train.loop` is the same for both; a task says how a batch
becomes a loss and how a validation set becomes metrics and predictions.

Dataset contracts (see lungus.data.datasets):

- training items are dicts: classification ``{"frames": uint8 (T, H, W), "target": float (K,)}``,
  segmentation ``{"image": uint8 (H, W), "mask": int64 (H, W)}``; training sets have
  ``set_epoch(epoch)`` so their random draws derive from (seed, epoch, index);
- evaluation sets expose whole clips: ``clip_frames(i)`` (uint8 (T, H, W)), and for
  segmentation ``clip_masks(i)`` and ``clip_fan(i)``; plus ``names`` and ``patients``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lungus.models.preprocessing import normalise_frames


@dataclass
class EvalResult:
    metrics: dict[str, Any]
    score: float  # higher is better; selects the best epoch
    predictions: list[dict[str, Any]] = field(default_factory=list)


def window_starts(n_frames: int, window: int, stride: int) -> list[int]:
    """Starts of evaluation windows covering every frame; one window for a short clip."""
    if n_frames <= window:
        return [0]
    starts = list(range(0, n_frames - window + 1, stride))
    if starts[-1] != n_frames - window:
        starts.append(n_frames - window)
    return starts


def clip_windows(frames: np.ndarray, window: int, stride: int) -> np.ndarray:
    """(W, window, H, W) windows of a clip; a clip shorter than a window is stretched by
    repeating frames evenly, never padded with blank frames (blank frames would read as
    "no B-lines" and bias short clips)."""
    n_frames = frames.shape[0]
    if n_frames < window:
        index = np.floor(np.linspace(0, n_frames, window, endpoint=False)).astype(int)
        return frames[index][None]
    return np.stack([frames[s : s + window] for s in window_starts(n_frames, window, stride)])


def aggregate_windows(probabilities: Tensor, how: str) -> Tensor:
    """One clip distribution from (W, K) window distributions.

    ``max`` keeps the window with the most evidence against class 0 (no B-lines): for a
    binary task that is the maximum P(present) over windows, Lucassen 2023's rule.
    """
    if how == "mean":
        return probabilities.mean(dim=0)
    return probabilities[int(torch.argmax(1.0 - probabilities[:, 0]))]


class ClassificationTask:
    kind = "classification"

    def __init__(self, class_names: Sequence[str], *, ordinal: bool, window: int, stride: int,
                 aggregation: str, normalisation: dict[str, float], eval_batch: int = 8, flip: bool = False) -> None:
        self.class_names = tuple(class_names)
        self.n_classes = len(self.class_names)
        self.ordinal = ordinal
        self.window = window
        self.stride = stride
        self.aggregation = aggregation
        self.normalisation = normalisation
        self.eval_batch = eval_batch
        self.flip = flip  # test-time augmentation: average the logits of each window and its mirror image

    def inputs(self, frames: Tensor, device: torch.device) -> Tensor:
        """uint8 (B, T, H, W) -> normalised float (B, 1, T, H, W) on the device."""
        return normalise_frames(frames.to(device, non_blocking=True), self.normalisation).unsqueeze(1)

    def loss(self, model: nn.Module, batch: dict[str, Tensor], criterion: nn.Module, device: torch.device) -> Tensor:
        logits = model(self.inputs(batch["frames"], device))
        return criterion(logits, batch["target"].to(device))

    @torch.no_grad()
    def predict_clip(self, model: nn.Module, frames: np.ndarray, device: torch.device) -> np.ndarray:
        """Class distribution for one whole clip (uint8 (T, H, W)) by sliding windows."""
        windows = torch.from_numpy(clip_windows(frames, self.window, self.stride))
        chunks = []
        for start in range(0, windows.shape[0], self.eval_batch):
            batch = self.inputs(windows[start : start + self.eval_batch], device)
            logits = model(batch).float()
            if self.flip:
                logits = (logits + model(batch.flip(-1)).float()) / 2
            chunks.append(logits.softmax(dim=1).cpu())
        return aggregate_windows(torch.cat(chunks), self.aggregation).numpy()

    def evaluate(self, model: nn.Module, dataset: Any, device: torch.device, indices: Sequence[int],
                 n_boot: int = 0) -> EvalResult:
        """Metrics on the clips ``indices`` of an evaluation set (all of them on one rank)."""
        predictions = []
        for i in indices:
            probabilities = self.predict_clip(model, dataset.clip_frames(i), device)
            predictions.append({
                "index": int(i),
                "clip": dataset.names[i],
                "patient": dataset.patients[i],
                "target": dataset.targets[i].tolist(),
                "probabilities": probabilities.tolist(),
            })
        return self.summarise(predictions, n_boot)

    def summarise(self, predictions: list[dict[str, Any]], n_boot: int = 0) -> EvalResult:
        from lungus.evaluate.metrics import classification_metrics

        predictions = sorted(predictions, key=lambda p: p["index"])
        targets = np.asarray([p["target"] for p in predictions])
        probabilities = np.asarray([p["probabilities"] for p in predictions])
        y_true = targets.argmax(axis=1)
        metrics = classification_metrics(y_true, probabilities, [p["patient"] for p in predictions],
                                         ordinal=self.ordinal, n_boot=n_boot)
        log_loss = float(-np.mean(np.sum(targets * np.log(np.clip(probabilities, 1e-7, 1.0)), axis=1)))
        metrics["loss"] = log_loss
        # AUC selects the epoch; a validation set holding one class has none, then log-loss decides.
        score = metrics["auc"] if metrics.get("auc") is not None else -log_loss
        return EvalResult(metrics, float(score), predictions)


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


def drop_small_blines(masks: np.ndarray, fan_mask: np.ndarray | None, min_share: float) -> np.ndarray:
    """(T, H, W) class masks with B-line regions (8-connected, discrete and confluent together)
    under ``min_share`` of the fan's area set to background."""
    import cv2

    from lungus.data.schemes import B_LINE, BACKGROUND, CONFLUENT

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


class SegmentationTask:
    """Frame segmentation: a loss over (image, mask) batches; whole-clip masks, B-line analysis
    and metrics for evaluation.

    ``label_classes``: the classes the training labels could show (None: all). A model trained
    on labels that never draw a class (AnnotateUltrasound: no A-lines, no rib shadows) never
    learned it, so predictions choose among ``label_classes`` only. Evaluation scores only
    the frames whose truth is labelled (mask value 255 marks a frame no rater annotated).
    ``min_bline_share``: predicted B-line regions smaller than this share of the fan are
    dropped (:func:`drop_small_blines`); ``logit_offsets`` (one per class, default
    :data:`CONFLUENT_LOGIT_OFFSET` for the confluent class) are added to the logits before
    the argmax. Both are recorded in the model card.
    """

    kind = "segmentation"

    def __init__(self, class_names: Sequence[str], *, normalisation: dict[str, float], eval_batch: int = 16,
                 label_classes: Sequence[int] | None = None, min_bline_share: float = MIN_BLINE_SHARE,
                 logit_offsets: Sequence[float] | None = None) -> None:
        from lungus.data.schemes import CONFLUENT

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

    @classmethod
    def from_card(cls, card: Any, eval_batch: int = 16) -> SegmentationTask:
        """The task a segmenter's model card describes (lungus.models.model_file.ModelCard)."""
        extra = card.extra or {}
        # A card without post-processing settings predates them: plain argmax, as it was trained.
        post = extra.get("postprocessing", {})
        return cls(card.class_names, normalisation=card.preprocessing["normalisation"], eval_batch=eval_batch,
                   label_classes=extra.get("label_classes"), min_bline_share=post.get("min_bline_share", 0.0),
                   logit_offsets=post.get("logit_offsets", [0.0] * len(card.class_names)))

    def card_extra(self) -> dict[str, Any]:
        """What a model card records so that :meth:`from_card` rebuilds this task."""
        extra: dict[str, Any] = {"postprocessing": {"min_bline_share": self.min_bline_share,
                                                    "logit_offsets": list(self.logit_offsets)}}
        if self.label_classes is not None:
            extra["label_classes"] = list(self.label_classes)
        return extra

    def inputs(self, images: Tensor, device: torch.device) -> Tensor:
        return normalise_frames(images.to(device, non_blocking=True), self.normalisation).unsqueeze(1)

    def loss(self, model: nn.Module, batch: dict[str, Tensor], criterion: nn.Module, device: torch.device) -> Tensor:
        return criterion(model(self.inputs(batch["image"], device)), batch["mask"].to(device))

    def masks_from_logits(self, logits: Tensor) -> Tensor:
        """(B, K, H, W) logits -> (B, H, W) uint8 class ids, among ``label_classes`` when set."""
        if any(self.logit_offsets):
            logits = logits + torch.tensor(self.logit_offsets, device=logits.device, dtype=logits.dtype)[:, None, None]
        if self.label_classes is not None and len(self.label_classes) < logits.shape[1]:
            keep = torch.tensor(self.label_classes, device=logits.device)
            return keep[class_argmax(logits.index_select(1, keep)).long()].to(torch.uint8)
        return class_argmax(logits)

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

    def evaluate(self, model: nn.Module, dataset: Any, device: torch.device, indices: Sequence[int],
                 n_boot: int = 0) -> EvalResult:
        from lungus.data.annotation_labels import IGNORE_INDEX, labelled_frames
        from lungus.data.blines import analyse_masks

        predictions = []
        for i in indices:
            frames, truth, fan = dataset.clip_frames(i), dataset.clip_masks(i), dataset.clip_fan(i)
            labelled = labelled_frames(truth, fan.mask if fan is not None else None)
            if not labelled.any():
                continue  # a clip nobody annotated has nothing to score
            frames, truth = frames[labelled], np.where(truth[labelled] == IGNORE_INDEX, 0, truth[labelled])
            predicted = self.predict_masks(model, frames, device, fan.mask if fan is not None else None)
            predicted_analysis, true_analysis = analyse_masks(predicted, fan), analyse_masks(truth, fan)
            # Reports draw the frames with the most B-lines and the worst count; keep just those images.
            count_error = np.abs(predicted_analysis.bline_count.astype(int) - true_analysis.bline_count.astype(int))
            worst = int(np.argmax(count_error)) if count_error.any() else None
            shown = {t for t in (true_analysis.top_frame, predicted_analysis.top_frame, worst) if t is not None}
            predictions.append({
                "index": int(i),
                "clip": dataset.names[i],
                "patient": dataset.patients[i],
                "frames": np.flatnonzero(labelled),
                "predicted": predicted,
                "truth": truth,
                "predicted_analysis": predicted_analysis,
                "true_analysis": true_analysis,
                "images": {int(t): frames[t] for t in (shown or {len(frames) // 2})},
            })
        return self.summarise(predictions, n_boot)

    def summarise(self, predictions: list[dict[str, Any]], n_boot: int = 0) -> EvalResult:
        from lungus.evaluate.seg_metrics import segmentation_metrics
        from lungus.evaluate.seg_report import tally_prediction

        predictions = sorted(predictions, key=lambda p: p["index"])
        if not predictions:
            return EvalResult({"n_clips": 0, "n_patients": 0}, 0.0, [])
        tallies = [tally_prediction(p) for p in predictions]
        metrics = segmentation_metrics(tallies, [p["patient"] for p in predictions], n_boot=n_boot)
        score = metrics.get("dice_b_line")
        return EvalResult(metrics, float(score) if score is not None else 0.0, predictions)
