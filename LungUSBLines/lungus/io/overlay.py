"""Static overlays: burned-in text and graphics that stay put while the ultrasound image moves.

The rule (justified in docs/deidentification.md), per pixel over evenly sampled frames:

1. **stroke core**: the spread between its 90th and 10th percentile over time is at most
   ``core_spread`` grey levels (burned-in pixels repeat exactly, up to codec noise;
   speckle decorrelates with tissue motion, breathing and probe movement), and its low
   (10th percentile) value stands ``contrast`` grey levels above the local background
   (the median, over a window wider than a text stroke, of each pixel's temporal median)
   and above ``min_level``. Lossy video re-codes text drawn over moving speckle with some
   noise every frame, so a pixel standing ``strong_contrast`` above the background, or
   near-saturated (``saturated_level``: also solid logos wider than the window), may
   spread up to ``fringe_spread``: speckle almost never holds that bright for 90 % of a
   clip. Cores in connected groups smaller than ``min_core_pixels`` are
   chance (a speckle grain that happened to hold still), not text;
2. **fringe**: within ``fringe_reach`` pixels of a core, pixels that are nearly static
   (``fringe_spread``) and a little above the background (anti-aliased and codec-blurred
   stroke edges) join it; the result grows by one pixel, where a fringe blended with
   moving speckle is no longer static. The reach is bounded so that the fringe cannot
   creep along a slowly moving bright structure such as the pleural line;
3. **cover**: each word (strokes less than a few pixels apart) is replaced by its bounding
   box, so that the blacked-out letters cannot be read as black shapes in the speckle.

A clip that does not move (one frame, a frozen loop) gives no temporal evidence: when
more than ``max_static_share`` of the bright image looks static the rule declines
rather than blank the image, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class StaticOverlayConfig:
    """Parameters of static_overlay_mask; the defaults are argued in docs/deidentification.md."""

    max_frames: int = 64  # frames sampled evenly for the statistics
    min_frames: int = 3  # fewer: no temporal evidence, the rule declines
    core_spread: float = 3.0  # p90 - p10 over time (grey levels) at or below which a pixel can be a stroke core
    contrast: float = 40.0  # a core's low value above the local background
    min_level: float = 60.0  # ... and above this absolute level
    strong_contrast: float = 80.0  # a core this far above the background may spread up to fringe_spread
    saturated_level: float = 200.0  # a static pixel this bright is graphics whatever its surround
    min_core_pixels: int = 2  # smaller connected groups of cores are chance, not strokes
    fringe_spread: float = 24.0  # a fringe pixel's spread over time is at most this
    fringe_contrast: float = 8.0  # ... and its low value this far above the background
    fringe_reach: int = 3  # pixels from a core a fringe may lie
    background_window: int = 15  # pixels (odd): wider than a text stroke
    max_static_share: float = 0.3  # static share of the bright pixels above which the clip does not move

    def __post_init__(self) -> None:
        if self.min_frames < 2 or self.max_frames < self.min_frames:
            raise ValueError(f"need 2 <= min_frames <= max_frames, got {self.min_frames}, {self.max_frames}")
        if self.background_window < 3 or self.background_window % 2 == 0:
            raise ValueError(f"background_window must be odd and >= 3, got {self.background_window}")
        if not 0.0 < self.max_static_share <= 1.0:
            raise ValueError(f"max_static_share must be in (0, 1], got {self.max_static_share}")


@dataclass
class StaticOverlay:
    """The outcome: ``mask`` (H, W) bool of static overlay pixels (all False when the rule
    declined), ``frames_used`` and, when the rule declined, ``declined`` saying why."""

    mask: np.ndarray
    frames_used: int
    declined: str | None = None


def sample_frame_indices(n_frames: int, max_frames: int) -> np.ndarray:
    """Up to ``max_frames`` frame indices spread evenly over the clip."""
    return np.unique(np.linspace(0, n_frames - 1, min(n_frames, max_frames)).round().astype(int))


def _temporal_percentiles(stack: np.ndarray, chunk_rows: int = 64) -> tuple[np.ndarray, ...]:
    """(p10, median, p90) over time of a (T, H, W) uint8 stack, a band of rows at a time
    (sorting uint8 in place keeps memory at the size of the stack)."""
    n_frames, height, width = stack.shape
    low_k, mid_k, high_k = (int(round(q * (n_frames - 1))) for q in (0.1, 0.5, 0.9))
    low, mid, high = (np.empty((height, width), dtype=np.uint8) for _ in range(3))
    for row0 in range(0, height, chunk_rows):
        band = np.sort(stack[:, row0 : row0 + chunk_rows], axis=0)
        low[row0 : row0 + chunk_rows] = band[low_k]
        mid[row0 : row0 + chunk_rows] = band[mid_k]
        high[row0 : row0 + chunk_rows] = band[high_k]
    return low, mid, high


def static_overlay_mask(
    frames: np.ndarray, region: np.ndarray | None = None, config: StaticOverlayConfig | None = None
) -> StaticOverlay:
    """Static text and graphics in (T, H, W) ``frames`` (uint8, or values 0..255), looked for
    inside ``region`` (H, W) bool (default: everywhere)."""
    config = config or StaticOverlayConfig()
    frames = np.asarray(frames)
    n_frames, height, width = frames.shape
    nothing = np.zeros((height, width), dtype=bool)
    indices = sample_frame_indices(n_frames, config.max_frames)
    if len(indices) < config.min_frames:
        return StaticOverlay(nothing, len(indices), f"{len(indices)} frame(s): no motion to tell text from image")
    stack = frames[indices]
    if stack.dtype != np.uint8:
        stack = np.clip(np.rint(stack), 0, 255).astype(np.uint8)
    low, median, high = _temporal_percentiles(stack)
    region = np.ones((height, width), dtype=bool) if region is None else np.asarray(region, dtype=bool)

    spread = high.astype(np.int16) - low.astype(np.int16)
    window = min(config.background_window, 2 * (min(height, width) // 2) - 1)
    background = cv2.medianBlur(median, window).astype(np.float32) if window >= 3 else median.astype(np.float32)
    low_f = low.astype(np.float32)
    above = low_f - background
    contrasted = (spread <= config.core_spread) & (above >= config.contrast) & (low_f >= config.min_level)
    # Lossy video re-codes text drawn over moving speckle with some noise each frame; speckle
    # almost never holds far above its surround, or near saturation, through 90 % of a clip,
    # so a stronger contrast (or saturation) admits a spread up to fringe_spread.
    loose = (spread <= config.fringe_spread) & (
        ((above >= config.strong_contrast) & (low_f >= config.min_level)) | (low_f >= config.saturated_level)
    )
    stroke = region & (contrasted | loose)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(stroke.astype(np.uint8), connectivity=8)
    big = 1 + np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= config.min_core_pixels)
    stroke = np.isin(labels, big) if count > 1 else stroke

    bright_image = region & (high >= config.min_level)
    static_bright = bright_image & (spread <= config.core_spread)
    if static_bright.sum() > config.max_static_share * max(int(bright_image.sum()), 1):
        return StaticOverlay(nothing, len(indices), "the image barely moves: static text cannot be told from it")
    if not stroke.any():
        return StaticOverlay(nothing, len(indices))

    reach = 2 * config.fringe_reach + 1
    near_core = cv2.dilate(stroke.astype(np.uint8), np.ones((reach, reach), np.uint8)).astype(bool)
    fringe = near_core & (spread <= config.fringe_spread) & (low_f >= background + config.fringe_contrast)
    strokes = cv2.dilate((stroke | fringe).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return StaticOverlay(_covering_boxes(strokes) & region, len(indices))


def _covering_boxes(strokes: np.ndarray, gap: int = 8) -> np.ndarray:
    """Each run of strokes along a text line (characters less than ``gap`` pixels apart
    side by side) replaced by its bounding box. Blacking out the strokes alone would leave
    the words legible as black letters cut into the speckle, and a character the rule
    missed in part would stand alone; a box over the run says only that text was there."""
    joined = cv2.dilate(strokes.astype(np.uint8), np.ones((1, 2 * gap + 1), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    covered = np.zeros_like(strokes)
    for left, top, box_width, box_height, _ in stats[1:count]:
        # The horizontal dilation widened the run by gap on either side; the box does not.
        covered[top : top + box_height, left + gap : left + box_width - gap] = True
    return covered | strokes
