"""How a fan is laid out for the model: ``cartesian`` (the image as it is) or ``polar`` (the fan
unrolled to depth x angle, lungus.data.pipeline.clip_preparation). Defined here, torch- and cv2-free, so the
training settings check a layout without loading OpenCV."""

from __future__ import annotations

LAYOUTS: tuple[str, ...] = ("cartesian", "polar")
