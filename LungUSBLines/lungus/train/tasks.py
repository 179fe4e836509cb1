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
                 aggregation: str, normalisation: dict[str, float], eval_batch: int = 8) -> None:
        self.class_names = tuple(class_names)
        self.n_classes = len(self.class_names)
        self.ordinal = ordinal
        self.window = window
        self.stride = stride
        self.aggregation = aggregation
        self.normalisation = normalisation
        self.eval_batch = eval_batch

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
            logits = model(self.inputs(windows[start : start + self.eval_batch], device))
            chunks.append(logits.float().softmax(dim=1).cpu())
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


class SegmentationTask:
    kind = "segmentation"

    def __init__(self, class_names: Sequence[str], *, normalisation: dict[str, float], eval_batch: int = 16) -> None:
        self.class_names = tuple(class_names)
        self.n_classes = len(self.class_names)
        self.normalisation = normalisation
        self.eval_batch = eval_batch

    def inputs(self, images: Tensor, device: torch.device) -> Tensor:
        return normalise_frames(images.to(device, non_blocking=True), self.normalisation).unsqueeze(1)

    def loss(self, model: nn.Module, batch: dict[str, Tensor], criterion: nn.Module, device: torch.device) -> Tensor:
        return criterion(model(self.inputs(batch["image"], device)), batch["mask"].to(device))

    @torch.no_grad()
    def predict_masks(self, model: nn.Module, frames: np.ndarray, device: torch.device) -> np.ndarray:
        """uint8 (T, H, W) frames -> uint8 (T, H, W) class masks."""
        out = []
        for start in range(0, frames.shape[0], self.eval_batch):
            logits = model(self.inputs(torch.from_numpy(frames[start : start + self.eval_batch]), device))
            out.append(logits.argmax(dim=1).to(torch.uint8).cpu().numpy())
        return np.concatenate(out)

    def evaluate(self, model: nn.Module, dataset: Any, device: torch.device, indices: Sequence[int],
                 n_boot: int = 0) -> EvalResult:
        from lungus.data.blines import analyse_masks

        predictions = []
        for i in indices:
            frames, truth, fan = dataset.clip_frames(i), dataset.clip_masks(i), dataset.clip_fan(i)
            predicted = self.predict_masks(model, frames, device)
            predictions.append({
                "index": int(i),
                "clip": dataset.names[i],
                "patient": dataset.patients[i],
                "predicted": predicted,
                "truth": truth,
                "predicted_analysis": analyse_masks(predicted, fan),
                "true_analysis": analyse_masks(truth, fan),
            })
        return self.summarise(predictions, n_boot)

    def summarise(self, predictions: list[dict[str, Any]], n_boot: int = 0) -> EvalResult:
        from lungus.evaluate.seg_metrics import segmentation_metrics, tally_clip

        predictions = sorted(predictions, key=lambda p: p["index"])
        tallies = [
            tally_clip(p["predicted"], p["truth"], p["predicted_analysis"].positions, p["true_analysis"].positions,
                       tolerance=p["true_analysis"].position_tolerance)
            for p in predictions
        ]
        metrics = segmentation_metrics(tallies, [p["patient"] for p in predictions], n_boot=n_boot)
        score = metrics.get("dice_b_line")
        return EvalResult(metrics, float(score) if score is not None else 0.0, predictions)
