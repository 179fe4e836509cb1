"""Fan unwrapping: resample a convex-probe sector onto a (depth, angle) grid.

B-lines are bright streaks running radially from the pleura to the bottom of the fan. On
a convex probe's sector they fan out; after :func:`unwrap_fan` they are vertical columns,
so a CNN (or a column-wise pooling) sees every B-line the same way wherever it lies in
the sector. On the COVID-BLUES development clips this "polar" input beat the letterboxed
fan for every model tried (see the research log). Linear-probe images need no unwrapping:
their B-lines are vertical already.

Rows of the unwrapped grid run from the inner to the outer radius, columns from the left
to the right edge angle (FanGeometry's convention: degrees from straight down, negative to
the left). A rotation about the probe apex becomes a shift along the columns.
:func:`rewrap_fan` draws grid images (maps, masks) back into the original frame.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from lungus.io.clip import FanGeometry

# The sector of Philips Lumify convex clips whose fan was already cropped to the frame
# (COVID-BLUES), relative to the frame: apex row and column as fractions of the height and
# width, half-angle in degrees, inner and outer radius as fractions of the height. It is the
# median of lungus.io.detect_fan over the 155 development clips where it found a sector;
# use it for the few clips of such a collection whose fan escapes detection.
LUMIFY_CROPPED_SECTOR = (-0.536, 0.509, 33.4, 0.533, 1.542)


def _as_size(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    rows, cols = (int(v) for v in size)
    if rows < 1 or cols < 1:
        raise ValueError(f"size must be positive (rows, cols), got {size}")
    return rows, cols


def is_unwrappable(fan: FanGeometry | None) -> bool:
    """Whether ``fan`` is a sector with the apex, angles and radii unwrapping needs."""
    return (
        fan is not None and fan.kind == "sector" and fan.apex is not None
        and fan.angles_deg is not None and fan.radii is not None
    )


def relative_sector(shape: tuple[int, int], sector: tuple[float, float, float, float, float]) -> FanGeometry:
    """A sector FanGeometry for a (rows, cols) frame from (apex_row, apex_col, half_angle_deg, inner, outer),
    apex as fractions of the height and width, radii as fractions of the height (see LUMIFY_CROPPED_SECTOR)."""
    from lungus.io.fan import sector_mask

    values = tuple(float(v) for v in sector)
    if len(values) != 5 or not 0 < values[2] < 90 or not 0 <= values[3] < values[4]:
        raise ValueError(
            "a relative sector is (apex_row, apex_col, half_angle_deg, inner, outer) with "
            f"0 < half_angle < 90 and 0 <= inner < outer, got {sector!r}"
        )
    rows, cols = _as_size(shape)
    apex = (values[0] * rows, values[1] * cols)
    angles = (-values[2], values[2])
    radii = (values[3] * rows, values[4] * rows)
    mask = sector_mask((rows, cols), apex, angles, radii)
    return FanGeometry(mask, "sector", apex=apex, angles_deg=angles, radii=radii, source="assumed")


def unwrap_maps(fan: FanGeometry, size: int | tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap maps (map_x, map_y): for each (depth, angle) grid cell, where it lies in the frame."""
    if not is_unwrappable(fan):
        raise ValueError(f"unwrapping needs a sector fan with apex, angles and radii, got kind {fan.kind!r}")
    rows, cols = _as_size(size)
    inner, outer = fan.radii
    if not outer > inner >= 0:
        raise ValueError(f"fan radii must satisfy 0 <= inner < outer, got {fan.radii}")
    left, right = fan.angles_deg
    if not right > left:
        raise ValueError(f"fan angles must go from left to right, got {fan.angles_deg}")
    radius = np.linspace(inner, outer, rows, dtype=np.float64)[:, None]
    theta = np.radians(np.linspace(left, right, cols, dtype=np.float64))[None, :]
    map_y = fan.apex[0] + radius * np.cos(theta)
    map_x = fan.apex[1] + radius * np.sin(theta)
    return map_x.astype(np.float32), map_y.astype(np.float32)


def _remap_flag(interpolation: str) -> int:
    """cv2's flag for ``"linear"`` (images) or ``"nearest"`` (class masks); ValueError otherwise."""
    if interpolation not in ("linear", "nearest"):
        raise ValueError(f"interpolation must be 'linear' or 'nearest', got {interpolation!r}")
    return cv2.INTER_NEAREST if interpolation == "nearest" else cv2.INTER_LINEAR


def _image_stack(images: np.ndarray, name: str, axes: str) -> tuple[np.ndarray, bool]:
    """(T, a, b) view of (a, b) or (T, a, b) ``images``, and whether it was a single image."""
    images = np.asarray(images)
    if images.ndim not in (2, 3):
        raise ValueError(f"{name} must be ({axes}) or (T, {axes}), got shape {images.shape}")
    return (images[None], True) if images.ndim == 2 else (images, False)


def unwrap_fan(
    frames: np.ndarray, fan: FanGeometry, size: int | tuple[int, int], interpolation: str = "linear"
) -> np.ndarray:
    """(T, H, W) or (H, W) frames of a sector fan resampled onto a (depth, angle) grid of ``size``.

    Grid cells outside the frame or outside ``fan.mask`` are 0. When the grid is coarser
    than the fan the frames are blurred first, so thin B-lines are averaged, not aliased.
    Use ``interpolation="nearest"`` for class masks (no blurring then).
    """
    flag = _remap_flag(interpolation)
    stack, was_2d = _image_stack(frames, "frames", "H, W")
    if fan.mask.shape != stack.shape[1:]:
        raise ValueError(f"fan mask {fan.mask.shape} does not match the frames {stack.shape[1:]}")
    map_x, map_y = unwrap_maps(fan, size)
    inside = cv2.remap(fan.mask.astype(np.uint8), map_x, map_y, cv2.INTER_NEAREST, borderValue=0) > 0
    rows, cols = map_x.shape
    # source pixels per grid cell: along the depth, and along the arc at the middle radius
    arc = math.radians(fan.angles_deg[1] - fan.angles_deg[0]) * (fan.radii[0] + fan.radii[1]) / 2
    step = max((fan.radii[1] - fan.radii[0]) / rows, arc / cols)
    out = np.zeros((stack.shape[0], rows, cols), dtype=stack.dtype)
    for t, frame in enumerate(stack):
        if interpolation == "linear" and step > 1.5:
            frame = cv2.GaussianBlur(frame, (0, 0), 0.5 * step)
        out[t] = np.where(inside, cv2.remap(frame, map_x, map_y, flag, borderValue=0), 0)
    return out[0] if was_2d else out


def rewrap_fan(grid: np.ndarray, fan: FanGeometry, interpolation: str = "linear") -> np.ndarray:
    """The inverse of :func:`unwrap_fan`: (T, rows, cols) or (rows, cols) grid images drawn back
    into frames of ``fan.mask``'s shape (0 outside the fan), e.g. to overlay a model's maps or
    masks predicted on unwrapped input. Use ``interpolation="nearest"`` for class masks."""
    flag = _remap_flag(interpolation)
    if not is_unwrappable(fan):
        raise ValueError(f"rewrapping needs a sector fan with apex, angles and radii, got kind {fan.kind!r}")
    stack, was_2d = _image_stack(grid, "grid", "rows, cols")
    rows, cols = stack.shape[1:]
    (inner, outer), (left, right) = fan.radii, fan.angles_deg
    height, width = fan.mask.shape
    d_row = np.arange(height, dtype=np.float64)[:, None] - fan.apex[0]
    d_col = np.arange(width, dtype=np.float64)[None, :] - fan.apex[1]
    radius = np.hypot(d_row, d_col)
    angle = np.degrees(np.arctan2(d_col, d_row))
    map_y = ((radius - inner) / (outer - inner) * (rows - 1)).astype(np.float32)
    map_x = ((angle - left) / (right - left) * (cols - 1)).astype(np.float32)
    out = np.zeros((stack.shape[0], height, width), dtype=stack.dtype)
    for t, image in enumerate(stack):
        out[t] = np.where(fan.mask, cv2.remap(image, map_x, map_y, flag, borderValue=0), 0)
    return out[0] if was_2d else out
