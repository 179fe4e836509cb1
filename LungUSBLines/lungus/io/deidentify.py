"""Pixel de-identification: crop to the fan, black out everything outside it, and mask the
static text and graphics that a generous fan estimate (or a fan JSON) still lets in.

Two layers, because either alone can fail: the fan (detected, or read from the
AnonymizeUltrasound JSON beside the clip) removes everything outside the ultrasound
image; inside it, burned-in pixels that do not change over the clip are masked
(lungus.io.overlay). The report says what each layer removed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from lungus.io.clip import Clip, FanGeometry
from lungus.io.fan import crop_to_fan, detect_fan
from lungus.io.overlay import StaticOverlayConfig, static_overlay_mask


@dataclass(frozen=True)
class DeidentificationReport:
    """What de-identification removed from one clip (pixel counts are per frame position)."""

    fan: dict[str, Any]  # FanGeometry.to_dict() of the fan used, in the original frame
    frame_size: tuple[int, int]  # (rows, columns) before
    cropped_size: tuple[int, int]  # (rows, columns) after
    pixels_outside_fan: int  # positions blanked or cropped away
    content_outside_fan: int  # ... of which some frame showed something (text, graphics, image)
    static_masked_inside_fan: int  # static overlay positions inside the fan set to black
    static_frames_used: int  # frames the static check sampled
    static_check: str  # "done", or why it could not run

    def to_dict(self) -> dict[str, Any]:
        record = dataclasses.asdict(self)
        record["frame_size"], record["cropped_size"] = list(self.frame_size), list(self.cropped_size)
        return record

    def summary(self) -> str:
        """One line for stdout."""
        static = (
            f"masked {self.static_masked_inside_fan} static overlay pixel(s) inside it"
            if self.static_check == "done"
            else f"static check skipped ({self.static_check})"
        )
        return (
            f"blanked {self.pixels_outside_fan} pixel(s) outside the {self.fan['kind']} fan "
            f"({self.content_outside_fan} not black), {static}"
        )


def deidentify(
    clip: Clip, fan: FanGeometry | None = None, config: StaticOverlayConfig | None = None
) -> tuple[Clip, DeidentificationReport]:
    """The clip cropped to its fan, black outside it and over static overlays inside it.

    Uses ``fan``, else ``clip.fan``, else detects it. The returned clip's
    ``meta["deidentification"]`` holds the report's dict.
    """
    fan = fan or clip.fan or detect_fan(clip.frames)
    if fan.mask.shape != (clip.height, clip.width):
        raise ValueError(f"fan mask {fan.mask.shape} does not match the frames {(clip.height, clip.width)}")
    # Looked for over the whole frame: a text line cut by the fan's edge has its static
    # strokes outside, and their fringe reaches the fragments the fan let in.
    overlay = static_overlay_mask(clip.frames, config=config)
    masked = overlay.mask & fan.mask
    frames, rgb = clip.frames, clip.rgb
    if masked.any():
        frames = np.where(masked, 0, frames).astype(np.uint8)
        if rgb is not None:
            rgb = np.where(masked[:, :, None], 0, rgb).astype(np.uint8)
    outside = ~fan.mask
    shown = clip.frames.max(axis=0) > 0
    if clip.rgb is not None:
        shown |= clip.rgb.max(axis=(0, 3)) > 0
    cropped = crop_to_fan(dataclasses.replace(clip, frames=frames, rgb=rgb, meta=dict(clip.meta)), fan)
    report = DeidentificationReport(
        fan=fan.to_dict(),
        frame_size=(clip.height, clip.width),
        cropped_size=(cropped.height, cropped.width),
        pixels_outside_fan=int(outside.sum()),
        content_outside_fan=int((outside & shown).sum()),
        static_masked_inside_fan=int(masked.sum()),
        static_frames_used=overlay.frames_used,
        static_check=overlay.declined or "done",
    )
    cropped.meta["deidentification"] = report.to_dict()
    return cropped, report
