"""A clip classifier's predictions: sliding windows over a whole clip, aggregated to one
class distribution."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from lungus.models.normalisation import normalise_frames
from lungus.operating_point import OperatingPoint
from lungus.predict.windows import aggregate_windows, clip_windows


def window_inputs(frames: Tensor, normalisation: dict[str, float], device: torch.device) -> Tensor:
    """uint8 windows (B, T, H, W) -> a clip classifier's input: normalised float (B, 1, T, H, W) on the device."""
    return normalise_frames(frames.to(device, non_blocking=True), normalisation).unsqueeze(1)


class ClipClassifier:
    """How a clip classifier is fed and how its windows become one answer.

    ``window`` frames per window, ``stride`` between window starts, ``aggregation`` (max or
    mean) over windows, ``normalisation`` (the card's mean/std), ``eval_batch`` windows per
    model call, ``flip``: test-time augmentation (average the logits of each window and its
    mirror image). ``ordinal``: the classes are ordered (metrics use it). ``operating_point``:
    the card's recalibration and decision threshold (None: raw probabilities, decided by the
    largest; training validates that way, before an operating point is chosen).
    """

    kind = "classification"

    def __init__(self, class_names: Sequence[str], *, ordinal: bool, window: int, stride: int,
                 aggregation: str, normalisation: dict[str, float], eval_batch: int = 8, flip: bool = False,
                 operating_point: OperatingPoint | None = None) -> None:
        self.class_names = tuple(class_names)
        self.n_classes = len(self.class_names)
        self.ordinal = ordinal
        self.window = window
        self.stride = stride
        self.aggregation = aggregation
        self.normalisation = normalisation
        self.eval_batch = eval_batch
        self.flip = flip
        self.operating_point = operating_point

    def calibrate(self, probabilities: np.ndarray) -> np.ndarray:
        """A clip's class probabilities as the card reports them (recalibrated if it says so)."""
        return probabilities if self.operating_point is None else self.operating_point.calibrate(probabilities)

    def decide(self, probabilities: np.ndarray) -> int:
        """The class of one clip's (reported) probabilities: at the card's threshold, else the largest."""
        if self.operating_point is None:
            return int(np.argmax(probabilities))
        return int(self.operating_point.decide(probabilities)[0])

    def inputs(self, frames: Tensor, device: torch.device) -> Tensor:
        """uint8 (B, T, H, W) -> normalised float (B, 1, T, H, W) on the device."""
        return window_inputs(frames, self.normalisation, device)

    @torch.no_grad()
    def predict_clip(self, model: nn.Module, frames: np.ndarray, device: torch.device) -> np.ndarray:
        """Class distribution for one whole clip (uint8 (T, H, W)) by sliding windows, recalibrated
        as the card says."""
        windows = torch.from_numpy(clip_windows(frames, self.window, self.stride))
        chunks = []
        for start in range(0, windows.shape[0], self.eval_batch):
            batch = self.inputs(windows[start : start + self.eval_batch], device)
            logits = model(batch).float()
            if self.flip:
                logits = (logits + model(batch.flip(-1)).float()) / 2
            chunks.append(logits.softmax(dim=1).cpu())
        return self.calibrate(aggregate_windows(torch.cat(chunks), self.aggregation).numpy())
