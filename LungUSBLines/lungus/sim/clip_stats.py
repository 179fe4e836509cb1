"""Image statistics of a lung-ultrasound clip inside its fan, the same for real and simulated clips.

``clip_statistics(clip)`` measures what a viewer (and a classifier) sees first, all of it scale-free
so that a 350-pixel real clip and a 256-pixel simulated one compare:

- grey levels of the fan: ``grey_mean``, ``grey_std``, ``grey_p05``, ``grey_p50``, ``grey_p95`` and
  ``grey_spread`` (p95 - p05);
- speckle: ``speckle_contrast``, the median local std / mean in small windows (where the local mean
  is not dark), and the grain, ``grain_axial`` and ``grain_lateral``: the half-width at half height of
  the speckle's autocorrelation (after removing the anatomy with a wide blur) as a percentage of
  the fan's depth, in a patch in the middle of the fan (NaN where that patch is mostly black);
- depth: ``depth_profile`` (mean grey level in ``DEPTH_BINS`` bands from the probe down, as
  ``depth_00``..), ``depth_slope`` (least-squares grey levels gained over the full depth:
  attenuation, TGC, a dark lung under a bright chest wall), ``deep_grey`` (mean grey level of the
  deepest 40 % of the fan) and ``bright_depth`` (the relative depth where the bright near field
  ends: where the finer profile, past its maximum, first falls halfway to its deepest level;
  the chest wall's share of the image);
- fan geometry as fractions of the image height: ``apex_frac`` (apex row; negative above the
  image), ``top_frac`` and ``bottom_frac`` (where the fan's centre line starts and ends), and
  ``half_angle_deg``; ``fan_area_frac``. A fan that is not a sector gives NaN for the sector ones;
- motion: ``temporal_change``, mean |frame t+1 - frame t| over the fan divided by ``grey_std``
  (0 for a frozen clip, about 1.13 for independent frames): lung sliding and speckle shimmer;
- ribs: ``rib_shadow_frac``, the share of angular sectors of the deep fan darker than half the
  median sector (acoustic shadows).

The fan is the clip's own (read from a sidecar or detected by lungus.io.fan; a simulated clip
carries its true fan), else it is detected here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from lungus.io.clip import Clip, FanGeometry

#: Frames sampled evenly for the spatial statistics (each with its next frame for the motion).
MAX_FRAMES = 12
DEPTH_BINS = 10
ANGLE_BINS = 24
#: Scalar statistics, in the order tables and figures show them.
STATISTICS: tuple[str, ...] = (
    "grey_mean", "grey_std", "grey_p05", "grey_p50", "grey_p95", "grey_spread",
    "speckle_contrast", "grain_axial", "grain_lateral", "depth_slope", "deep_grey", "bright_depth",
    "apex_frac", "top_frac", "bottom_frac", "half_angle_deg", "fan_area_frac",
    "temporal_change", "rib_shadow_frac",
)
DEPTH_NAMES: tuple[str, ...] = tuple(f"depth_{k:02d}" for k in range(DEPTH_BINS))
# Local windows darker than this (grey level) are left out of the speckle contrast: there the
# noise floor and clipping at 0 rule, not the speckle.
_DARK = 20.0
# Grey levels at or below this are taken as clipped to black.
_BLACK = 2


@dataclass(frozen=True)
class _FanCoordinates:
    """Per-pixel relative depth (0 at the probe, 1 at the fan's bottom) and relative angle (0 left,
    1 right), the (eroded) fan mask they hold in, and the fan's depth in pixels."""

    depth: np.ndarray
    angle: np.ndarray
    inside: np.ndarray
    depth_px: float


def _coordinates(fan: FanGeometry) -> _FanCoordinates:
    height, width = fan.mask.shape
    rows = np.arange(height, dtype=np.float64)[:, None]
    cols = np.arange(width, dtype=np.float64)[None, :]
    if fan.kind == "sector" and fan.apex is not None and fan.radii is not None and fan.angles_deg is not None:
        (inner, outer), (left, right) = fan.radii, fan.angles_deg
        radius = np.hypot(rows - fan.apex[0], cols - fan.apex[1])
        depth = (radius - inner) / max(outer - inner, 1.0)
        angle = (np.degrees(np.arctan2(cols - fan.apex[1], rows - fan.apex[0])) - left) / max(right - left, 1e-6)
        depth_px = float(outer - inner)
    else:
        row0, col0, row1, col1 = fan.bbox
        depth = np.broadcast_to((rows - row0) / max(row1 - row0, 1), (height, width))
        angle = np.broadcast_to((cols - col0) / max(col1 - col0, 1), (height, width))
        depth_px = float(row1 - row0)
    # Off the fan's edge a few pixels, so its border (and the black beyond) does not count.
    margin = max(1, int(round(0.01 * depth_px)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    inside = cv2.erode(fan.mask.astype(np.uint8), kernel) > 0
    return _FanCoordinates(np.asarray(depth), np.asarray(angle), inside, max(depth_px, 1.0))


def _geometry(fan: FanGeometry, height: int) -> dict[str, float]:
    if fan.kind == "sector" and fan.apex is not None and fan.radii is not None and fan.angles_deg is not None:
        apex_row, (inner, outer), (left, right) = fan.apex[0], fan.radii, fan.angles_deg
        sector = {"apex_frac": apex_row / height, "top_frac": (apex_row + inner) / height,
                  "bottom_frac": (apex_row + outer) / height, "half_angle_deg": 0.5 * (right - left)}
    else:
        sector = dict.fromkeys(("apex_frac", "top_frac", "bottom_frac", "half_angle_deg"), math.nan)
    return {**sector, "fan_area_frac": fan.area_fraction}


def _half_width(profile: np.ndarray) -> float:
    """Lag (pixels, interpolated) where a normalised autocorrelation profile first falls to 0.5."""
    below = np.flatnonzero(profile < 0.5)
    if below.size == 0:
        return float(profile.size)
    k = int(below[0])
    if k == 0:
        return 0.0
    high, low = profile[k - 1], profile[k]
    return float(k - 1 + (high - 0.5) / max(high - low, 1e-9))


def _grain(frames: np.ndarray, coords: _FanCoordinates) -> tuple[float, float]:
    """Speckle grain (axial, lateral) as % of the fan depth, from a patch in the fan's middle."""
    inside = coords.inside & (coords.depth >= 0.4) & (coords.depth <= 0.8) & (np.abs(coords.angle - 0.5) <= 0.15)
    rows, cols = np.nonzero(inside)
    if rows.size < 64:
        return math.nan, math.nan
    # The largest rectangle around the middle column that lies wholly inside: shrink the column span
    # until every row of the row span is inside.
    r0, r1 = int(rows.min()), int(rows.max()) + 1
    centre = int(round(np.median(cols)))
    half = int(cols.max() - cols.min()) // 2
    while half > 4 and not inside[r0:r1, centre - half : centre + half].all():
        half -= 1
    patch_frames = frames[:, r0:r1, centre - half : centre + half].astype(np.float32)
    if patch_frames.shape[1] < 8 or patch_frames.shape[2] < 8:
        return math.nan, math.nan
    if np.mean(patch_frames <= _BLACK) > 0.5:
        return math.nan, math.nan  # mostly clipped to black: no speckle left to measure
    sigma = 0.02 * coords.depth_px
    acf = np.zeros(patch_frames.shape[1:], dtype=np.float64)
    for patch in patch_frames:
        detail = patch - cv2.GaussianBlur(patch, (0, 0), sigma)
        detail -= detail.mean()
        spectrum = np.fft.fft2(detail)
        acf += np.real(np.fft.ifft2(spectrum * np.conj(spectrum)))
    if acf[0, 0] <= 0:
        return math.nan, math.nan
    acf /= acf[0, 0]
    scale = 100.0 / coords.depth_px
    return _half_width(acf[: acf.shape[0] // 2, 0]) * scale, _half_width(acf[0, : acf.shape[1] // 2]) * scale


def _speckle_contrast(frames: np.ndarray, coords: _FanCoordinates) -> float:
    size = 2 * max(2, int(round(0.01 * coords.depth_px))) + 1
    ratios = []
    for frame in frames.astype(np.float32):
        mean = cv2.blur(frame, (size, size))
        square = cv2.blur(frame * frame, (size, size))
        std = np.sqrt(np.maximum(square - mean * mean, 0.0))
        keep = coords.inside & (mean >= _DARK)
        if keep.any():
            ratios.append(std[keep] / mean[keep])
    return float(np.median(np.concatenate(ratios))) if ratios else math.nan


def _depth_profile(frames: np.ndarray, coords: _FanCoordinates) -> np.ndarray:
    mean_frame = frames.mean(axis=0)
    bins = np.clip((coords.depth * DEPTH_BINS).astype(int), 0, DEPTH_BINS - 1)
    profile = np.full(DEPTH_BINS, np.nan)
    for k in range(DEPTH_BINS):
        here = coords.inside & (bins == k)
        if here.any():
            profile[k] = float(mean_frame[here].mean())
    return profile


def _bright_depth(frames: np.ndarray, coords: _FanCoordinates, bins: int = 40) -> float:
    mean_frame = frames.mean(axis=0)
    index = np.clip((coords.depth * bins).astype(int), 0, bins - 1)
    profile = np.array([mean_frame[coords.inside & (index == k)].mean() if (coords.inside & (index == k)).any()
                        else np.nan for k in range(bins)])
    ok = np.isfinite(profile)
    if ok.sum() < 4:
        return math.nan
    profile = np.interp(np.arange(bins), np.flatnonzero(ok), profile[ok])
    profile = np.convolve(np.pad(profile, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    peak = int(np.argmax(profile))
    half = 0.5 * (profile[peak] + profile[-1])
    below = np.flatnonzero(profile[peak:] <= half)
    return float((peak + (below[0] if below.size else bins - peak)) / bins)


def _slope(profile: np.ndarray) -> float:
    centres = (np.arange(DEPTH_BINS) + 0.5) / DEPTH_BINS
    ok = np.isfinite(profile)
    if ok.sum() < 2:
        return math.nan
    return float(np.polyfit(centres[ok], profile[ok], 1)[0])


def _rib_shadow_frac(frames: np.ndarray, coords: _FanCoordinates) -> float:
    mean_frame = frames.mean(axis=0)
    deep = coords.inside & (coords.depth >= 0.35)
    bins = np.clip((coords.angle * ANGLE_BINS).astype(int), 0, ANGLE_BINS - 1)
    means = []
    for k in range(ANGLE_BINS):
        here = deep & (bins == k)
        if here.sum() >= 20:  # a sector the frame cuts to a sliver says nothing
            means.append(float(mean_frame[here].mean()))
    if len(means) < 4:
        return math.nan
    means = np.asarray(means)
    return float(np.mean(means < 0.5 * np.median(means)))


def _temporal_change(clip_frames: np.ndarray, picks: np.ndarray, coords: _FanCoordinates, std: float) -> float:
    pairs = [t for t in picks if t + 1 < clip_frames.shape[0]]
    if not pairs or std <= 0:
        return math.nan
    changes = [np.abs(clip_frames[t + 1].astype(np.float32) - clip_frames[t].astype(np.float32))[coords.inside].mean()
               for t in pairs]
    return float(np.mean(changes) / std)


def clip_statistics(clip: Clip, max_frames: int = MAX_FRAMES) -> dict[str, float]:
    """The statistics of the module docstring for one clip: ``STATISTICS`` and ``DEPTH_NAMES``
    (NaN where one does not apply). ValueError for a clip whose fan is empty."""
    fan = clip.fan
    if fan is None:
        from lungus.io.fan import detect_fan

        fan = detect_fan(clip)
    coords = _coordinates(fan)
    if not coords.inside.any():
        raise ValueError("the clip's fan is empty")
    picks = np.unique(np.linspace(0, clip.n_frames - 1, min(max_frames, clip.n_frames)).round().astype(int))
    frames = clip.frames[picks]
    values = frames[:, coords.inside].astype(np.float64).ravel()
    p05, p50, p95 = np.percentile(values, [5, 50, 95])
    grey_std = float(values.std())
    profile = _depth_profile(frames, coords)
    grain_axial, grain_lateral = _grain(frames, coords)
    stats = {
        "grey_mean": float(values.mean()), "grey_std": grey_std, "grey_p05": float(p05), "grey_p50": float(p50),
        "grey_p95": float(p95), "grey_spread": float(p95 - p05),
        "speckle_contrast": _speckle_contrast(frames, coords),
        "grain_axial": grain_axial, "grain_lateral": grain_lateral, "depth_slope": _slope(profile),
        "deep_grey": float(frames[:, coords.inside & (coords.depth >= 0.6)].mean())
        if (coords.inside & (coords.depth >= 0.6)).any() else math.nan,
        "bright_depth": _bright_depth(frames, coords),
        **_geometry(fan, clip.height),
        "temporal_change": _temporal_change(clip.frames, picks, coords, grey_std),
        "rib_shadow_frac": _rib_shadow_frac(frames, coords),
    }
    stats.update(zip(DEPTH_NAMES, (float(v) for v in profile)))
    return {name: stats[name] for name in (*STATISTICS, *DEPTH_NAMES)}
