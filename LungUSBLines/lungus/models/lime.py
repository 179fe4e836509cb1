"""LIME superpixel explanations (Ribeiro et al. 2016, "Why should I trust you?") for any lungus
classifier, beside Grad-CAM (lungus.models.explain).

One frame at a time: the frame is cut into superpixels (scikit-image SLIC or Felzenszwalb), random
samples hide some of them (filled with a neutral value: the frame's mean, or the frame blurred),
the model scores every sample through its standard forward (B, 1, T, H, W) -> logits,
and a linear surrogate (scikit-learn Ridge, weighted by LIME's exponential kernel on the cosine
distance to the unaltered frame) says how much each superpixel adds to the explained probability.
A window model sees the same superpixel mask on every frame of its window, so a superpixel stands
for that image region over the window; a frame-level model (T = 1) sees the frame alone.

Written on scikit-image and scikit-learn, which the engine already needs, rather than on the
``lime`` package: that is unmaintained since 2020 and would add a dependency for a few dozen
lines. Seeded: the same settings give the same weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lungus.errors import LungUSError
from lungus.explanations import LIME_FILLS as FILLS
from lungus.explanations import LIME_SEGMENTATIONS as SEGMENTATIONS

#: LIME's kernel width for images (lime_image.LimeImageExplainer's default).
DEFAULT_KERNEL_WIDTH = 0.25
#: Blur of the "blur" fill, as a fraction of the frame's larger side: wide enough to erase a
#: B-line (a few pixels across at the 64-96 px inputs) but keep the fan's overall brightness.
BLUR_FRACTION = 1 / 12

Score = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class LimeSettings:
    """How LIME explains a frame.

    samples: perturbed copies the model scores (the first is the unaltered frame); superpixels:
    how many regions to aim for (SLIC meets it closely, Felzenszwalb roughly); segmentation: slic
    or felzenszwalb; fill: what a hidden superpixel shows (mean: the frame's mean inside the fan;
    blur: the frame blurred); kernel_width: LIME's kernel width on the cosine distance; seed: the
    random samples; batch: samples per model call. The defaults take a few seconds on a CPU for a
    64-96 px frame CNN (docs/explanations.md).
    """

    samples: int = 256
    superpixels: int = 40
    segmentation: str = "slic"
    fill: str = "mean"
    kernel_width: float = DEFAULT_KERNEL_WIDTH
    seed: int = 0
    batch: int = 64

    def __post_init__(self) -> None:
        _check_whole("samples", self.samples, 10, 100_000)
        _check_whole("superpixels", self.superpixels, 2, 10_000)
        _check_whole("batch", self.batch, 1, 100_000)
        _check_whole("seed", self.seed, 0, 2**32 - 1)
        if self.segmentation not in SEGMENTATIONS:
            raise LungUSError(
                f"LIME segmentation must be one of {', '.join(SEGMENTATIONS)}, got {self.segmentation!r}"
            )
        if self.fill not in FILLS:
            raise LungUSError(f"LIME fill must be one of {', '.join(FILLS)}, got {self.fill!r}")
        width = self.kernel_width
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not (0 < width < math.inf):
            raise LungUSError(f"LIME kernel width must be a positive number, got {width!r}")


def _check_whole(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise LungUSError(f"LIME {name} must be a whole number from {low} to {high}, got {value!r}")


@dataclass
class LimeResult:
    """One frame's explanation: ``segments`` (H, W) superpixel ids (-1: never hidden, outside the
    fan), ``weights`` (S,) the surrogate's coefficient per superpixel (probability added when the
    superpixel is shown), ``intercept``, ``fit`` (the surrogate's weighted R^2 on the samples) and
    ``probability`` (the model's on the unaltered input)."""

    segments: np.ndarray
    weights: np.ndarray
    intercept: float
    fit: float
    probability: float

    def heat_map(self) -> np.ndarray:
        """float32 (H, W) in [0, 1]: each superpixel's positive weight over the largest one (the
        evidence for the class, as Grad-CAM keeps its positive part); 0 where no superpixel adds."""
        positive = np.clip(self.weights, 0, None)
        peak = positive.max(initial=0.0)
        scaled = positive / peak if peak > 0 else positive
        heat = np.zeros(self.segments.shape, np.float32)
        inside = self.segments >= 0
        heat[inside] = scaled[self.segments[inside]]
        return heat

    def top_superpixels(self, count: int) -> np.ndarray:
        """The ids of the ``count`` superpixels with the largest weights, largest first."""
        return np.argsort(-self.weights, kind="stable")[:count]


def superpixels(
    frame: np.ndarray, count: int, method: str = "slic", inside: np.ndarray | None = None
) -> np.ndarray:
    """int64 (H, W) superpixel ids 0..S-1 of a grey frame (any float or integer range), -1 outside
    ``inside`` (bool (H, W), e.g. the fan: what lies outside is never hidden)."""
    from skimage.segmentation import felzenszwalb, slic

    image = np.asarray(frame, dtype=np.float64)
    low, high = float(image.min()), float(image.max())
    image = (image - low) / (high - low) if high > low else np.zeros_like(image)
    area = image.shape[0] * image.shape[1]
    if inside is not None and not inside.any():
        raise LungUSError("LIME needs a frame with something inside its fan")
    if method == "slic":
        # compactness 0.1 for [0, 1] grey images (scikit-image's advice): regions follow bright
        # streaks such as B-lines yet stay compact in the flat speckle between them.
        labels = slic(image, n_segments=count, compactness=0.1, channel_axis=None, start_label=1,
                      mask=inside, enforce_connectivity=True)
        labels = labels.astype(np.int64) - 1  # 0 outside the mask becomes -1
    else:
        # scale = the side of a region of the asked size, and no region under a quarter of that
        # size: within about 30 % of ``count`` regions on simulated frames of 64-96 px.
        labels = felzenszwalb(image, scale=math.sqrt(area / count), sigma=0.5,
                              min_size=max(2, area // (4 * count)))
    labels = np.asarray(labels, np.int64)
    if inside is not None:
        labels = np.where(inside, labels, -1)
    # Consecutive ids 0..S-1 (a mask can cut a region away; felzenszwalb's ids need not be dense).
    kept = labels >= 0
    _, dense = np.unique(labels[kept], return_inverse=True)
    out = np.full(labels.shape, -1, np.int64)
    out[kept] = dense.reshape(-1)
    return out


def neutral_fill(window: Tensor, how: str, inside: np.ndarray | None = None) -> Tensor:
    """What hidden superpixels show, per frame of ``window`` (..., T, H, W): the frame blurred, or
    its mean (inside the fan when ``inside`` is given)."""
    frames = window.reshape(-1, *window.shape[-2:]).detach().float().cpu().numpy()
    if how == "mean":
        region = np.ones(frames.shape[-2:], bool) if inside is None else inside
        filled = np.broadcast_to(frames[:, region].mean(axis=1)[:, None, None], frames.shape).copy()
    else:
        import cv2

        sigma = BLUR_FRACTION * max(frames.shape[-2:])
        filled = np.stack([cv2.GaussianBlur(f, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT) for f in frames])
    return torch.from_numpy(filled.astype(np.float32)).reshape(window.shape).to(window.device, window.dtype)


def class_probability(model: torch.nn.Module, target_class: int | None = None) -> Score:
    """The score LIME explains: the model's probability of ``target_class`` for a batch
    (B, 1, T, H, W), or with None its P(B-lines) = 1 - P(first class). Runs without gradients."""

    def score(x: Tensor) -> Tensor:
        with torch.no_grad():
            probabilities = model(x).float().softmax(dim=1)
        return 1.0 - probabilities[:, 0] if target_class is None else probabilities[:, target_class]

    return score


def cosine_distance_to_original(samples: np.ndarray) -> np.ndarray:
    """LIME's distance of each on/off sample (N, S) to the unaltered frame (all on): the cosine
    distance 1 - k / sqrt(k S) = 1 - sqrt(k / S) for k superpixels on (1 when none is)."""
    shown = samples.sum(axis=1)
    return 1.0 - np.sqrt(shown / samples.shape[1])


def explain_frame(
    score: Score,
    window: Tensor,
    frame: int = 0,
    settings: LimeSettings | None = None,
    inside: np.ndarray | None = None,
) -> LimeResult:
    """LIME for frame ``frame`` of one normalised model input ``window`` (1, 1, T, H, W): superpixels
    of that frame, the same on/off mask on every frame of the window, ``score`` (class_probability)
    of each sample, and the kernel-weighted Ridge surrogate. ``inside``: bool (H, W) where
    superpixels may be hidden (the fan); elsewhere the frame always shows."""
    from sklearn.linear_model import Ridge

    settings = settings or LimeSettings()
    if window.dim() != 5 or window.shape[0] != 1 or window.shape[1] != 1:
        raise ValueError(f"LIME explains one window (1, 1, T, H, W), got {tuple(window.shape)}")
    if not 0 <= frame < window.shape[2]:
        raise ValueError(f"frame {frame} is not in a window of {window.shape[2]} frames")
    segments = superpixels(window[0, 0, frame].detach().float().cpu().numpy(), settings.superpixels,
                           settings.segmentation, inside)
    count = int(segments.max()) + 1
    rng = np.random.default_rng(settings.seed)
    samples = rng.integers(0, 2, size=(settings.samples, count)).astype(bool)
    samples[0] = True  # the unaltered frame, as LIME does
    fill = neutral_fill(window, settings.fill, inside)
    # Pixel lookup: a superpixel's on/off per pixel; pixels outside every superpixel always show.
    lookup = torch.from_numpy(np.where(segments >= 0, segments, count)).to(window.device)
    scores = []
    for start in range(0, settings.samples, settings.batch):
        chunk = torch.from_numpy(samples[start : start + settings.batch]).to(window.device)
        shown = torch.cat([chunk, torch.ones_like(chunk[:, :1])], dim=1)[:, lookup]  # (N, H, W)
        perturbed = torch.where(shown[:, None, None], window, fill)  # (N, 1, T, H, W)
        scores.append(score(perturbed).float().cpu().numpy())
    target = np.concatenate(scores).astype(np.float64)
    kernel = np.sqrt(np.exp(-(cosine_distance_to_original(samples) ** 2) / settings.kernel_width**2))
    surrogate = Ridge(alpha=1.0, fit_intercept=True)
    surrogate.fit(samples.astype(np.float64), target, sample_weight=kernel)
    fit = float(surrogate.score(samples.astype(np.float64), target, sample_weight=kernel))
    return LimeResult(
        segments=segments,
        weights=surrogate.coef_.astype(np.float64),
        intercept=float(surrogate.intercept_),
        fit=fit if np.isfinite(fit) else 0.0,
        probability=float(target[0]),
    )


def lime_maps(
    model: torch.nn.Module,
    x: Tensor,
    target_class: int | None = None,
    settings: LimeSettings | None = None,
    inside: np.ndarray | None = None,
    frame: int | None = None,
) -> Tensor:
    """LIME maps (B, T, H, W) in [0, 1] (per-window max = 1) for a batch of windows, as grad_cam
    gives them: each window explained at frame ``frame`` (default its middle) and the map shown on
    every frame of the window (the mask was). The model is run in eval mode and left as it was."""
    batch, _, frames, height, width = x.shape
    at = frames // 2 if frame is None else frame
    was_training = model.training
    model.eval()
    try:
        score = class_probability(model, target_class)
        maps = [
            torch.from_numpy(explain_frame(score, x[i : i + 1], at, settings, inside).heat_map())
            for i in range(batch)
        ]
    finally:
        model.train(was_training)
    return torch.stack(maps)[:, None].expand(batch, frames, height, width).contiguous()
