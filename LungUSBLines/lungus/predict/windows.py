"""Sliding windows: how a clip classifier sees a whole clip, and how its windows become one answer."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


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
