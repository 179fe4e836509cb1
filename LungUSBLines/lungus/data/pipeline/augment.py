"""Ultrasound augmentations for training clips.

One set of random parameters per clip, applied to every frame, so motion between
frames stays real: gain, contrast, gamma, speckle, a small rotation about the probe
apex, a horizontal flip, a depth shift, and time reversal. Geometric changes apply
to class masks too (nearest neighbour), so image and mask stay aligned.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random changes; TrainConfig.augment may override any of them by name.

    On fan-unwrapped (polar) input a rotation about the apex is a lateral shift, so the
    polar recipe uses ``lateral_shift`` and sets ``rotation_deg`` to 0.
    """

    gain: tuple[float, float] = (0.75, 1.3)
    contrast: tuple[float, float] = (0.8, 1.25)
    log_gamma: float = 0.3
    speckle: float = 0.12  # largest multiplicative noise sigma
    noise: float = 0.0  # largest additive noise sigma (of full scale)
    rotation_deg: float = 8.0
    zoom: float = 0.0  # scale drawn from [1 - zoom, 1 + zoom] about the pivot
    flip: float = 0.5
    depth_shift: float = 0.08  # of the height
    lateral_shift: float = 0.0  # of the width
    time_reversal: float = 0.5

    @classmethod
    def from_settings(cls, settings: dict | None) -> AugmentConfig:
        """Defaults overridden by a mapping of field names (from a YAML config); clear error for unknown keys."""
        import dataclasses

        settings = dict(settings or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"unknown augmentation setting {unknown[0]!r}; settings are {', '.join(sorted(known))}")
        for name in ("gain", "contrast"):
            if name in settings:
                settings[name] = tuple(float(v) for v in settings[name])
        return cls(**settings)


def _pivot(fan_mask: np.ndarray) -> tuple[float, float]:
    """Rotation centre: the top centre of the fan, where a convex probe's apex projects."""
    rows = np.flatnonzero(fan_mask.any(axis=1))
    cols = np.flatnonzero(fan_mask.any(axis=0))
    if rows.size == 0:
        return 0.0, fan_mask.shape[1] / 2
    return float(rows[0]), float((cols[0] + cols[-1]) / 2)


def _warp(stack: np.ndarray, matrix: np.ndarray, interpolation: int) -> np.ndarray:
    height, width = stack.shape[1:]
    return np.stack([cv2.warpAffine(f, matrix, (width, height), flags=interpolation, borderValue=0) for f in stack])


def augment_clip(frames: np.ndarray, masks: np.ndarray | None, fan_mask: np.ndarray, rng: np.random.Generator,
                 config: AugmentConfig = AugmentConfig()) -> tuple[np.ndarray, np.ndarray | None]:
    """Augmented copies of uint8 (T, H, W) frames (and masks), one draw of parameters for the clip."""
    image = frames.astype(np.float32) / 255.0
    height, width = frames.shape[1:]
    region = fan_mask.astype(np.uint8)

    if rng.random() < config.time_reversal:
        image = image[::-1]
        masks = None if masks is None else masks[::-1]
    angle = rng.uniform(-config.rotation_deg, config.rotation_deg)
    scale = rng.uniform(1.0 - config.zoom, 1.0 + config.zoom)
    shift = rng.uniform(-config.depth_shift, config.depth_shift) * height
    lateral = rng.uniform(-config.lateral_shift, config.lateral_shift) * width
    flip = rng.random() < config.flip
    row, col = _pivot(fan_mask)
    matrix = cv2.getRotationMatrix2D((col, row), angle, scale)
    matrix[0, 2] += lateral
    matrix[1, 2] += shift
    if flip:  # mirror about the vertical line through the pivot
        matrix = np.array([[-1, 0, 2 * col], [0, 1, 0]], np.float64) @ np.vstack([matrix, [0, 0, 1]])
    image = _warp(image, matrix, cv2.INTER_LINEAR)
    region = _warp(region[None], matrix, cv2.INTER_NEAREST)[0]
    if masks is not None:
        masks = _warp(np.ascontiguousarray(masks), matrix, cv2.INTER_NEAREST)

    gamma = float(np.exp(rng.uniform(-config.log_gamma, config.log_gamma)))
    image = np.clip(image, 0, 1) ** gamma
    mean = image[:, region > 0].mean() if region.any() else image.mean()
    image = (image - mean) * rng.uniform(*config.contrast) + mean
    image = image * rng.uniform(*config.gain)
    sigma = rng.uniform(0, config.speckle)
    if sigma > 0:
        image = image * (1.0 + rng.normal(0.0, sigma, image.shape).astype(np.float32))
    additive = rng.uniform(0, config.noise)
    if additive > 0:
        image = image + rng.normal(0.0, additive, image.shape).astype(np.float32)
    image = np.where(region[None] > 0, image, 0.0)
    out = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out, (None if masks is None else masks.astype(np.uint8))
