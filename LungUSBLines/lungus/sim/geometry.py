"""Probe geometry of a simulated clip: beam space, scan conversion and the fan.

The simulator draws every frame in *beam space*: rows are depth samples along a scan
line (row 0 = probe surface), columns are scan lines (left to right). For a convex probe
the lines fan out from an apex above the image, so beam-space verticals become radial
lines in the image and beam-space horizontals become arcs, as on a real curvilinear
scanner. For a linear probe beam space is the image rectangle itself. Masks are drawn
in the same beam space and scan-converted with nearest-neighbour sampling, so they
register exactly with the image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from lungus.io.clip import FanGeometry

PROBES = ("convex", "linear")

# Mapped coordinate for pixels outside the fan: far outside beam space, so cv2.remap's
# constant border turns them into 0 (image) and background (mask).
_OUTSIDE = -100.0


@dataclass(frozen=True)
class ProbeGeometry:
    """Where the fan lies in an (height, width) image and how beam space maps onto it.

    convex: ``apex`` (row, col) above the image, ``half_angle_deg`` either side of straight
    down, ``radii`` (inner, outer) in pixels from the apex.
    linear: ``rect`` (row0, col0, row1, col1), end-exclusive.
    ``depth_mm`` is the imaging depth (probe surface to the bottom of the fan).
    """

    kind: str
    height: int
    width: int
    depth_mm: float
    apex: tuple[float, float] | None = None
    half_angle_deg: float | None = None
    radii: tuple[float, float] | None = None
    rect: tuple[int, int, int, int] | None = None

    def __post_init__(self) -> None:
        if self.kind not in PROBES:
            raise ValueError(f"probe kind must be one of {', '.join(PROBES)}, got {self.kind!r}")
        if self.kind == "convex" and (self.apex is None or self.half_angle_deg is None or self.radii is None):
            raise ValueError("a convex probe needs apex, half_angle_deg and radii")
        if self.kind == "linear" and self.rect is None:
            raise ValueError("a linear probe needs rect")

    @property
    def beam_shape(self) -> tuple[int, int]:
        """(depth samples, scan lines) of beam space: about one sample per image pixel in
        depth, and scan lines about as dense as the pixels at mid depth."""
        if self.kind == "linear":
            row0, col0, row1, col1 = self.rect
            return (row1 - row0, col1 - col0)
        inner, outer = self.radii
        samples = int(round(outer - inner))
        mid_arc = math.radians(2 * self.half_angle_deg) * 0.5 * (inner + outer)
        lines = int(np.clip(round(mid_arc * 0.8), 32, 2 * self.width))
        return (samples, lines)

    @property
    def mm_per_sample(self) -> float:
        return self.depth_mm / self.beam_shape[0]

    def mm_per_line(self, sample: float) -> float:
        """Lateral distance between neighbouring scan lines at a depth sample, in mm."""
        mm_per_pixel = self.mm_per_sample  # beam samples are about one pixel deep
        if self.kind == "linear":
            return mm_per_pixel
        inner, _ = self.radii
        _, lines = self.beam_shape
        step = math.radians(2 * self.half_angle_deg) / max(lines - 1, 1)
        return (inner + sample) * step * mm_per_pixel

    def beam_coordinates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each image pixel, its fractional (line, sample) in beam space, and the fan mask.

        Pixels outside the fan map far outside beam space.
        """
        rows, cols = np.mgrid[0 : self.height, 0 : self.width].astype(np.float64)
        samples, lines = self.beam_shape
        if self.kind == "linear":
            row0, col0, row1, col1 = self.rect
            fan = (rows >= row0) & (rows < row1) & (cols >= col0) & (cols < col1)
            line = cols - col0
            sample = rows - row0
        else:
            apex_row, apex_col = self.apex
            inner, outer = self.radii
            radius = np.hypot(rows - apex_row, cols - apex_col)
            angle = np.degrees(np.arctan2(cols - apex_col, rows - apex_row))
            half = self.half_angle_deg
            fan = (radius >= inner) & (radius <= outer) & (np.abs(angle) <= half)
            line = (angle + half) / (2 * half) * (lines - 1)
            sample = (radius - inner) / (outer - inner) * samples
        line = np.where(fan, line, _OUTSIDE).astype(np.float32)
        sample = np.where(fan, sample, _OUTSIDE).astype(np.float32)
        return line, sample, fan

    def fan_geometry(self) -> FanGeometry:
        """The lungus.io FanGeometry of this probe (source "simulated")."""
        _, _, fan = self.beam_coordinates()
        if self.kind == "linear":
            return FanGeometry(mask=fan, kind="linear", source="simulated")
        return FanGeometry(
            mask=fan,
            kind="sector",
            apex=self.apex,
            angles_deg=(-self.half_angle_deg, self.half_angle_deg),
            radii=self.radii,
            source="simulated",
        )


@dataclass(frozen=True)
class ConvexLayout:
    """Fixed fan geometry of a convex probe, as fractions of the image height (lungus.sim.fitted):
    ``apex_frac`` the apex row (negative: above the image), ``top_frac`` and ``bottom_frac`` where
    the fan's centre line starts and ends, ``half_angle_deg``, and the imaging depth ``depth_mm``.
    None keeps the drawn value."""

    apex_frac: float | None = None
    top_frac: float | None = None
    bottom_frac: float | None = None
    half_angle_deg: float | None = None
    depth_mm: float | None = None


def make_probe(
    kind: str,
    height: int,
    width: int,
    rng: np.random.Generator,
    depth_mm: float | None = None,
    layout: ConvexLayout | None = None,
) -> ProbeGeometry:
    """A plausible probe layout for an image of this size.

    convex: the apex sits 30-80 % of the image height above the top edge, the field of
    view is 56-80 degrees and the fan reaches close to the bottom; where the fan is
    wider than the image its sides are cut by the image border, as in clips exported
    already cropped; the top of the arc may be cut too. The top corners stay black (room
    for burned-in text).
    linear: a rectangle 55-85 % of the width, full height less a small margin.
    ``layout`` replaces a convex probe's drawn geometry (after drawing it, so the draws that
    follow stay the same).
    """
    if kind == "linear":
        frac = rng.uniform(0.55, 0.85)
        fan_width = max(8, int(round(width * frac)))
        col0 = (width - fan_width) // 2 + int(rng.integers(-2, 3))
        col0 = int(np.clip(col0, 0, width - fan_width))
        row0 = int(round(height * rng.uniform(0.01, 0.04)))
        row1 = height - int(round(height * rng.uniform(0.01, 0.04)))
        col1 = col0 + fan_width
        depth = depth_mm if depth_mm is not None else float(rng.uniform(40.0, 60.0))
        return ProbeGeometry("linear", height, width, depth, rect=(row0, col0, row1, col1))
    if kind != "convex":
        raise ValueError(f"probe kind must be one of {', '.join(PROBES)}, got {kind!r}")
    apex_row = -height * rng.uniform(0.30, 0.80)
    apex_col = (width - 1) / 2.0
    inner = height * rng.uniform(-0.02, 0.03) - apex_row
    outer = height * rng.uniform(0.96, 1.0) - apex_row
    half_angle = float(rng.uniform(28.0, 40.0))
    depth = depth_mm if depth_mm is not None else float(rng.uniform(70.0, 130.0))
    if layout is not None:
        apex_row, inner, outer, half_angle = _laid_out(layout, height, apex_row, inner, outer, half_angle)
        depth = layout.depth_mm if layout.depth_mm is not None else depth
    return ProbeGeometry(
        "convex",
        height,
        width,
        depth,
        apex=(float(apex_row), float(apex_col)),
        half_angle_deg=half_angle,
        radii=(float(inner), float(outer)),
    )


def _laid_out(
    layout: ConvexLayout, height: int, apex_row: float, inner: float, outer: float, half_angle: float
) -> tuple[float, float, float, float]:
    """(apex_row, inner, outer, half_angle) with ``layout``'s values in place of the drawn ones; the
    apex kept at least 5 % of the height above the fan's top and the fan at least half the height deep."""
    top = height * layout.top_frac if layout.top_frac is not None else apex_row + inner
    bottom = height * layout.bottom_frac if layout.bottom_frac is not None else apex_row + outer
    bottom = max(bottom, top + 0.5 * height)
    apex = height * layout.apex_frac if layout.apex_frac is not None else apex_row
    apex = min(apex, top - 0.05 * height)
    half = float(np.clip(layout.half_angle_deg, 5.0, 85.0)) if layout.half_angle_deg is not None else half_angle
    return float(apex), float(top - apex), float(bottom - apex), half


class ScanConverter:
    """Turns beam-space frames and masks into image frames, with tissue motion.

    ``depth_weight`` (per image pixel) says how much of the respiratory displacement a
    pixel follows: 0 at the probe surface, 1 at the pleura and below.
    """

    def __init__(self, probe: ProbeGeometry, pleura_sample: float) -> None:
        self.probe = probe
        self.map_line, self.map_sample, self.fan_mask = probe.beam_coordinates()
        samples, _ = probe.beam_shape
        weight = np.clip(self.map_sample / max(pleura_sample, 1.0), 0.0, 1.0)
        self.depth_weight = np.where(self.fan_mask, weight, 0.0).astype(np.float32)
        self._max_sample = np.float32(samples - 1)

    def sample_map(self, shift_samples: float) -> np.ndarray:
        """Beam-space sample coordinate of each pixel when tissue has moved down by
        ``shift_samples`` (pixels look further up beam space)."""
        # Pixels outside the fan keep a line coordinate far outside beam space, so
        # clamping their sample coordinate does not bring them inside.
        shifted = self.map_sample - np.float32(shift_samples) * self.depth_weight
        return np.clip(shifted, 0.0, self._max_sample, out=shifted)

    def image(self, beam: np.ndarray, sample_map: np.ndarray) -> np.ndarray:
        return cv2.remap(
            beam, self.map_line, sample_map, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )

    def labels(self, beam_labels: np.ndarray, sample_map: np.ndarray) -> np.ndarray:
        return cv2.remap(
            beam_labels,
            self.map_line,
            sample_map,
            cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
