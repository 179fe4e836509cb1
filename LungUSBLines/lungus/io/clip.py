"""The Clip and FanGeometry data contracts (docs/architecture.md#clip)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class FanGeometry:
    """Where the ultrasound image lies inside the frame.

    ``kind`` is ``"sector"`` (convex or phased array: a ring sector around an apex),
    ``"linear"`` (a rectangle) or ``"full"`` (the whole frame is image, e.g. a clip
    already cropped to its fan with nothing burned in around it).

    Coordinates are in pixels, (row, col). Angles are in degrees from straight down,
    negative to the left. ``radii`` are (inner, outer) distances from the apex.
    """

    mask: np.ndarray
    kind: str
    apex: tuple[float, float] | None = None
    angles_deg: tuple[float, float] | None = None
    radii: tuple[float, float] | None = None
    source: str = "detected"

    def __post_init__(self) -> None:
        self.mask = np.asarray(self.mask, dtype=bool)
        if self.mask.ndim != 2:
            raise ValueError(f"fan mask must be 2-D, got shape {self.mask.shape}")
        if self.kind not in ("sector", "linear", "full"):
            raise ValueError(f"fan kind must be sector, linear or full, got {self.kind!r}")

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """(row0, col0, row1, col1), end-exclusive; the whole frame if the mask is empty."""
        rows = np.flatnonzero(self.mask.any(axis=1))
        cols = np.flatnonzero(self.mask.any(axis=0))
        if rows.size == 0:
            return (0, 0, *self.mask.shape)
        return (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)

    @property
    def area_fraction(self) -> float:
        return float(self.mask.mean())

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (everything but the mask itself)."""

        def _floats(v: tuple[float, ...] | None) -> list[float] | None:
            return None if v is None else [round(float(x), 2) for x in v]

        return {
            "kind": self.kind,
            "bbox": list(self.bbox),
            "apex": _floats(self.apex),
            "angles_deg": _floats(self.angles_deg),
            "radii": _floats(self.radii),
            "area_fraction": round(self.area_fraction, 4),
            "source": self.source,
        }


@dataclass
class Clip:
    """A lung-ultrasound clip in memory.

    ``frames`` is uint8 (T, H, W) grayscale. ``rgb`` is kept only when colour matters
    (colour Doppler). ``meta`` never holds patient identifiers unless the reader was
    explicitly asked for them.
    """

    frames: np.ndarray
    fps: float | None = None
    spacing_mm: tuple[float, float] | None = None
    source: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    fan: FanGeometry | None = None
    rgb: np.ndarray | None = None

    def __post_init__(self) -> None:
        frames = np.asarray(self.frames)
        if frames.ndim == 2:
            frames = frames[None]
        if frames.ndim != 3:
            raise ValueError(f"frames must be (T, H, W), got shape {frames.shape}")
        if frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8, got {frames.dtype}")
        self.frames = frames
        if self.source is not None:
            self.source = Path(self.source)
        if self.fps is not None:
            self.fps = float(self.fps)
        if self.spacing_mm is not None:
            self.spacing_mm = (float(self.spacing_mm[0]), float(self.spacing_mm[1]))

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])

    @property
    def duration_s(self) -> float | None:
        return None if not self.fps else self.n_frames / self.fps

    def summary(self) -> dict[str, Any]:
        """The `lungus info --json` record for this clip."""
        return {
            "path": None if self.source is None else str(self.source),
            "n_frames": self.n_frames,
            "height": self.height,
            "width": self.width,
            "fps": self.fps,
            "spacing_mm": None if self.spacing_mm is None else list(self.spacing_mm),
            "duration_s": None if self.duration_s is None else round(self.duration_s, 3),
            "fan": None if self.fan is None else self.fan.to_dict(),
        }
