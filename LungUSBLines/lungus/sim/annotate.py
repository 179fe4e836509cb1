"""Burned-in scanner annotations outside the fan: text, a depth scale, an orientation mark.

Real exports carry these; the reader's fan masking must remove them. They are drawn
only outside the fan (with a small gap), so the image content and masks are untouched.
"""

from __future__ import annotations

import cv2
import numpy as np

from lungus.sim.geometry import ProbeGeometry

_MIN_SIZE = 96  # below this the text would not be legible; draw nothing


def annotation_overlay(
    probe: ProbeGeometry, fan_mask: np.ndarray, lines: list[str], rng: np.random.Generator
) -> np.ndarray:
    """(H, W) uint8 overlay, zero inside the fan and a few pixels around it."""
    height, width = fan_mask.shape
    overlay = np.zeros((height, width), dtype=np.uint8)
    if min(height, width) < _MIN_SIZE:
        return overlay
    scale = 0.28 * height / 256 + 0.05
    thickness = 1
    level = int(rng.integers(170, 235))
    line_height = int(round(11 * height / 256)) + 2
    for i, text in enumerate(lines):
        cv2.putText(
            overlay,
            text,
            (3, 3 + line_height * (i + 1) - 3),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            level,
            thickness,
            cv2.LINE_AA,
        )

    # Depth scale: a tick every centimetre beside the fan's right side.
    rows_per_cm = 10.0 / probe.mm_per_sample
    top = probe.rect[0] if probe.kind == "linear" else max(0.0, probe.radii[0] + probe.apex[0])
    cm = 0
    while True:
        row = int(round(top + cm * rows_per_cm))
        if row >= height - 1:
            break
        inside = np.flatnonzero(fan_mask[row])
        col = (inside[-1] + 6) if inside.size else width - 6
        if col + 4 < width:
            length = 4 if cm % 5 == 0 else 2
            cv2.line(overlay, (int(col), row), (int(col) + length, row), level, 1)
        cm += 1

    # Orientation marker (the dot most scanners show at the top of the image).
    inside_rows = np.flatnonzero(fan_mask.any(axis=1))
    if inside_rows.size:
        first = np.flatnonzero(fan_mask[inside_rows[0]])
        centre = (int(max(first[0] - 8, 3)), int(inside_rows[0] + 4))
        cv2.circle(overlay, centre, max(2, height // 128), level, -1, cv2.LINE_AA)

    keep_out = cv2.dilate(fan_mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    overlay[keep_out] = 0
    return overlay
