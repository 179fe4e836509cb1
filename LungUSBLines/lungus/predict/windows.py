"""Sliding windows: how a clip classifier sees a whole clip, and how its windows become one answer."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from lungus.clip_rules import parse_clip_rule


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
    """One clip distribution from (W, K) window distributions by the clip rule ``how``
    (lungus.clip_rules: max, mean, topk:K, consecutive:K; docs/frame-fusion.md#clip-rules).

    A window's evidence is 1 - P(class 0), the evidence against "no B-lines": for a binary task
    ``max`` is the maximum P(present) over windows, Lucassen 2023's rule.
    """
    rule, k = parse_clip_rule(how)
    if rule == "mean":
        return probabilities.mean(dim=0)
    evidence = 1.0 - probabilities[:, 0]
    if rule == "max":
        return probabilities[int(torch.argmax(evidence))]
    if rule == "topk":
        top = torch.topk(evidence, min(k, evidence.shape[0])).indices
        return probabilities[top].mean(dim=0)
    # consecutive: per run of k windows its weakest window; the clip is the strongest such run.
    k = min(k, evidence.shape[0])
    weakest = evidence.unfold(0, k, 1).min(dim=1)
    run = int(torch.argmax(weakest.values))
    return probabilities[run + int(weakest.indices[run])]
