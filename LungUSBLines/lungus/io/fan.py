"""The ultrasound fan (field of view): find it from the frames, or read it from a sidecar, and mask the rest.

Detection works on the clip itself, at a reduced working size:

1. temporal statistics: ultrasound speckle changes from frame to frame, burned-in text,
   calipers, logos and the black surround do not. Pixels whose standard deviation over
   time exceeds a few grey levels are image; a clip that does not move (one frame, a
   frozen loop) falls back to "brighter than black". In a moving clip, static text and
   graphics (lungus.io.overlay) are left out of the evidence, so that a text column
   written up to the fan's edge cannot join it;
2. morphology: an opening removes thin strokes (text, caliper crosses, depth ticks),
   the largest connected part is kept, a closing and hole filling make it solid;
3. a geometric fit: a rectangle (linear probe) and a ring sector (convex or phased
   array: the two straight side edges fitted by RANSAC meet at the apex, the radii come
   from the near and far edges in polar bins). The better fit, by IoU with the region,
   gives the mask, rendered at full resolution from the fitted parameters.

A clip already cropped to its fan (the fan touching the frame edges) comes out as a
sector clipped by the frame, or as ``full`` when the image fills the frame.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lungus.errors import LungUSError, error_detail
from lungus.io.clip import Clip, FanGeometry
from lungus.io.formats import json_type_name
from lungus.io.overlay import StaticOverlayConfig, sample_frame_indices, static_overlay_mask


@dataclass(frozen=True)
class FanDetectionConfig:
    """Parameters of detect_fan. The defaults suit clips from 150 to 2000 pixels across."""

    max_frames: int = 48  # frames sampled evenly for the temporal statistics
    work_size: int = 320  # longest side of the working image
    motion_threshold: float = 2.0  # std over time (grey levels) above which a pixel is image
    intensity_threshold: float = 10.0  # for still clips: brighter than this is image
    min_fit_iou: float = 0.5  # a fit this far from the image region is wrong; the region is the mask
    full_fraction: float = 0.97  # a region covering this much of the frame is "full"

    def __post_init__(self) -> None:
        if self.max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {self.max_frames}")
        if self.work_size < 32:
            raise ValueError(f"work_size must be >= 32 pixels, got {self.work_size}")
        if not 0.0 < self.min_fit_iou <= 1.0:
            raise ValueError(f"min_fit_iou must be in (0, 1], got {self.min_fit_iou}")
        if not 0.0 < self.full_fraction <= 1.0:
            raise ValueError(f"full_fraction must be in (0, 1], got {self.full_fraction}")


# --------------------------------------------------------------------------- rendering


def sector_mask(
    shape: tuple[int, int],
    apex: tuple[float, float],
    angles_deg: tuple[float, float],
    radii: tuple[float, float],
) -> np.ndarray:
    """Boolean (H, W) mask of a ring sector, clipped by the frame.

    ``apex`` is (row, col) and may lie outside the frame; ``angles_deg`` are (left, right)
    in degrees from straight down, negative to the left; ``radii`` are (inner, outer) in
    pixels. A pixel is inside when its centre is.
    """
    height, width = shape
    rows = np.arange(height, dtype=np.float32)[:, None] - np.float32(apex[0])
    cols = np.arange(width, dtype=np.float32)[None, :] - np.float32(apex[1])
    distance = np.hypot(rows, cols)
    angle = np.degrees(np.arctan2(cols, rows))  # 0 straight down, positive to the right
    left, right = sorted(angles_deg)
    inner, outer = sorted(radii)
    return (distance >= inner) & (distance <= outer) & (angle >= left) & (angle <= right)


def rectangle_mask(shape: tuple[int, int], bbox: tuple[int, int, int, int]) -> np.ndarray:
    """Boolean (H, W) mask of bbox = (row0, col0, row1, col1), end-exclusive, clipped by the frame."""
    mask = np.zeros(shape, dtype=bool)
    row0, col0, row1, col1 = (int(round(value)) for value in bbox)
    mask[max(row0, 0) : max(row1, 0), max(col0, 0) : max(col1, 0)] = True
    return mask


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


# --------------------------------------------------------------------------- detection


def detect_fan(frames: np.ndarray | Clip, config: FanDetectionConfig | None = None) -> FanGeometry:
    """The fan of a clip, found from its frames (T, H, W) uint8 (or a Clip)."""
    config = config or FanDetectionConfig()
    if isinstance(frames, Clip):
        frames = frames.frames
    frames = np.asarray(frames)
    if frames.ndim == 2:
        frames = frames[None]
    if frames.ndim != 3 or frames.shape[0] == 0:
        raise ValueError(f"frames must be (T, H, W) with T >= 1, got shape {frames.shape}")
    n_frames, height, width = frames.shape
    scale = min(1.0, config.work_size / max(height, width))
    work_h, work_w = max(8, int(round(height * scale))), max(8, int(round(width * scale)))
    scale_r, scale_c = work_h / height, work_w / width
    everything = FanGeometry(np.ones((height, width), dtype=bool), "full", source="detected")

    evidence = _image_evidence(frames, (work_h, work_w), config)
    if evidence is None or evidence.region.mean() >= config.full_fraction:
        return everything  # a blank clip, or image everywhere: nothing to cut away

    sector = _fit_sector(evidence.hull, evidence.region)
    rectangle = _fit_rectangle(evidence.hull)
    rectangle_iou = iou(rectangle_mask(evidence.hull.shape, rectangle), evidence.hull)
    if sector is not None and not sector.from_side_edges:
        # Without visible side edges a sector must explain the image clearly better.
        sector_iou = iou(sector_mask(evidence.hull.shape, *sector.parameters), evidence.hull)
        if sector_iou < rectangle_iou + 0.05:
            sector = None
    if sector is not None:
        apex, angles, radii = sector.parameters
        radii = _radii_covering(evidence.content, apex, angles, radii)
        work_mask = sector_mask((work_h, work_w), apex, angles, radii)
        apex = (float((apex[0] + 0.5) / scale_r - 0.5), float((apex[1] + 0.5) / scale_c - 0.5))
        radius_scale = 0.5 * (scale_r + scale_c)
        radii = (float(radii[0] / radius_scale), float(radii[1] / radius_scale))
        angles = (float(angles[0]), float(angles[1]))
        fitted = sector_mask((height, width), apex, angles, radii)
        geometry = {"kind": "sector", "apex": apex, "angles_deg": angles, "radii": radii}
    else:
        rectangle = _box_covering(evidence.content, rectangle)
        work_mask = rectangle_mask((work_h, work_w), rectangle)
        row0, col0, row1, col1 = rectangle
        fitted = rectangle_mask(
            (height, width), (row0 / scale_r, col0 / scale_c, row1 / scale_r, col1 / scale_c)
        )
        geometry = {"kind": "linear"}
    if fitted.mean() >= config.full_fraction:
        return everything
    covered = np.logical_and(work_mask, evidence.hull).sum() / max(int(evidence.hull.sum()), 1)
    if covered < 0.9 or iou(work_mask, evidence.hull) < config.min_fit_iou:
        # Neither shape describes the image: keep the (convex) region and the fitted shape.
        hull = (
            cv2.resize(evidence.hull.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
        )
        return FanGeometry(hull | fitted, source="detected-region", **geometry)
    return FanGeometry(fitted, source="detected", **geometry)


@dataclass
class _Evidence:
    """What the frames say, at working size."""

    region: np.ndarray  # the solid image area
    hull: np.ndarray  # its convex hull
    content: np.ndarray  # the region and, in a moving clip, every moving pixel: the fan must keep them


@dataclass
class _SectorFit:
    parameters: tuple  # (apex (row, col), (left, right) degrees, (inner, outer) radii)
    from_side_edges: bool  # apex from the two straight side edges (else from an arc's curvature)


def _image_evidence(
    frames: np.ndarray, work_shape: tuple[int, int], config: FanDetectionConfig
) -> _Evidence | None:
    """Region, hull and moving content at working size; None if nothing looks like image."""
    work_h, work_w = work_shape
    indices = sample_frame_indices(frames.shape[0], config.max_frames)
    stack = np.empty((len(indices), work_h, work_w), dtype=np.float32)
    for slot, index in enumerate(indices):
        frame = frames[index]
        if frame.shape != (work_h, work_w):
            frame = cv2.resize(frame, (work_w, work_h), interpolation=cv2.INTER_AREA)
        stack[slot] = frame
    brightest = stack.max(axis=0)
    variation = stack.std(axis=0) if len(stack) >= 2 else np.zeros_like(brightest)
    bright = brightest > config.intensity_threshold
    moving = variation > config.motion_threshold
    # Motion separates speckle from static overlays; a still clip can only go by brightness.
    use_motion = moving.sum() >= 0.2 * max(int(bright.sum()), 1)
    active = moving if use_motion else bright

    # Burned-in text and graphics stay put while the image moves: keep them out of the
    # evidence, or text written close to the fan joins it and widens the fitted shape.
    overlay = (
        static_overlay_mask(stack, config=StaticOverlayConfig(max_frames=config.max_frames)).mask
        if use_motion
        else np.zeros_like(active)
    )
    active = active & ~overlay

    radius = max(1, int(round(min(work_h, work_w) / 80)))
    opened = cv2.morphologyEx(active.astype(np.uint8), cv2.MORPH_OPEN, _disk(radius))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    if count <= 1:
        return None
    areas = stats[1:, cv2.CC_STAT_AREA]
    largest = int(areas.max())
    # With motion, a fan split by a dark rib shadow keeps both halves; a still image may
    # have big static blocks beside the fan, so only its largest part counts.
    keep_fraction = 0.1 if use_motion else 1.0
    core = np.isin(labels, 1 + np.flatnonzero(areas >= keep_fraction * largest))

    # The opening rounded the fan's corners and the thresholds miss its dim margins: grow
    # the core back into everything above the background level that touches it. Text
    # and logos are separated from the fan by black, so they stay out.
    still = variation <= 0.5
    surround = (
        brightest[still]
        if still.sum() > 0.01 * still.size
        else brightest[brightest <= np.percentile(brightest, 5)]
    )
    background = float(np.median(surround))
    noise = 1.4826 * float(np.median(np.abs(surround - background)))  # robust sigma of the surround
    threshold = background + max(1.5, 4.0 * noise)
    support = cv2.morphologyEx(((brightest > threshold) & ~overlay).astype(np.uint8), cv2.MORPH_OPEN, _disk(1))
    count, labels = cv2.connectedComponents(support, connectivity=8)
    touching = np.unique(labels[core & (support > 0)])
    grown = np.isin(labels, touching[touching > 0]) | core
    region = _fill_holes(cv2.morphologyEx(grown.astype(np.uint8), cv2.MORPH_CLOSE, _disk(3 * radius)) > 0)
    content = region.copy()
    if use_motion:
        content |= cv2.morphologyEx((moving & ~overlay).astype(np.uint8), cv2.MORPH_OPEN, _disk(1)) > 0
    # Fans are convex (up to the slight curve of a convex probe's near edge): the hull
    # restores dark rib shadows and deep black areas that reach the region's border.
    return _Evidence(region=region, hull=_convex_hull(region), content=content)


def _radii_covering(content: np.ndarray, apex, angles, radii) -> tuple[float, float]:
    """Radii widened so the sector keeps the moving content inside its angular span.

    Deep echoes below a black far field (faint A-lines, the far edge) are separate from
    the solid region but are image all the same; cutting them off would lose content.
    """
    _, _, distance, angle = _polar(content, apex)
    inside = (angle >= angles[0]) & (angle <= angles[1])
    if inside.sum() < 20:
        return radii
    near, far = np.percentile(distance[inside], [0.05, 99.95])
    return (max(0.0, min(radii[0], float(near) - 0.5)), max(radii[1], float(far) + 0.5))


def _box_covering(content: np.ndarray, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """The rectangle grown to keep the moving content level with it (rows within its
    columns, then columns within its rows)."""
    row0, col0, row1, col1 = box
    rows = np.nonzero(content[:, col0:col1])[0]
    if rows.size >= 20:
        low, high = np.percentile(rows, [0.05, 99.95])
        row0, row1 = min(row0, int(low)), max(row1, int(high) + 1)
    cols = np.nonzero(content[row0:row1, :])[1]
    if cols.size >= 20:
        low, high = np.percentile(cols, [0.05, 99.95])
        col0, col1 = min(col0, int(low)), max(col1, int(high) + 1)
    return (row0, col0, row1, col1)


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _convex_hull(mask: np.ndarray) -> np.ndarray:
    points = cv2.findNonZero(mask.astype(np.uint8))
    hull = np.zeros(mask.shape, dtype=np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(points), 1)
    return (hull > 0) | mask


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    from scipy.ndimage import binary_fill_holes

    return binary_fill_holes(mask)


def _fit_rectangle(region: np.ndarray) -> tuple[int, int, int, int]:
    """(row0, col0, row1, col1): rows and columns more than half covered by the region."""
    rows = np.flatnonzero(region.any(axis=1))
    cols = np.flatnonzero(region.any(axis=0))
    row0, row1, col0, col1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    box = region[row0:row1, col0:col1]
    full_rows = np.flatnonzero(box.mean(axis=1) > 0.5)
    full_cols = np.flatnonzero(box.mean(axis=0) > 0.5)
    if full_rows.size and full_cols.size:
        row0, row1 = row0 + full_rows[0], row0 + full_rows[-1] + 1
        col0, col1 = col0 + full_cols[0], col0 + full_cols[-1] + 1
    return int(row0), int(col0), int(row1), int(col1)


def _side_line(rows: np.ndarray, cols: np.ndarray, outward: int, tolerance: float = 2.5):
    """RANSAC fit of a fan side edge, col = slope * row + offset, through per-row extents.

    ``outward`` is -1 for the left edge, +1 for the right. Only supporting lines count:
    almost no extent may lie outward of the line. Dark areas inside the fan (rib shadows,
    a black far field) pull extents inwards and can line up too, but never outwards of
    the true edge, and they start below the near field; so among supporting lines that
    reach the top of the image, the one through most extents is the edge.
    Returns (slope, offset, inlier rows, inlier cols) or None.
    """
    if rows.size < 6:
        return None
    generator = np.random.default_rng(0)  # deterministic: the same clip gives the same fan
    allowed_outside = max(2, int(0.02 * rows.size))
    # The edge starts at the top of the image: near-field echoes are bright, shadows
    # only begin below the pleura. A line with no support up there is a shadow's border.
    top_rows = rows <= rows.min() + 0.15 * (rows.max() - rows.min())
    best, best_count = None, 0
    for _ in range(min(400, rows.size * 4)):
        first, second = generator.choice(rows.size, size=2, replace=False)
        if abs(rows[first] - rows[second]) < 3:
            continue
        slope = (cols[second] - cols[first]) / (rows[second] - rows[first])
        offset = cols[first] - slope * rows[first]
        residual = outward * (cols - (slope * rows + offset))  # > 0: outward of the line
        if int((residual > tolerance).sum()) > allowed_outside:
            continue
        inliers = np.abs(residual) <= tolerance
        count = int(inliers.sum())
        if count > best_count and int((inliers & top_rows).sum()) >= 3:
            best, best_count = (slope, offset), count
    if best is None or best_count < max(8, 0.05 * rows.size):
        return None
    inliers = np.abs(cols - (best[0] * rows + best[1])) <= tolerance
    slope, offset = np.polyfit(rows[inliers], cols[inliers], 1)
    return float(slope), float(offset), rows[inliers], cols[inliers]


def _symmetric_sides(left_line, right_line):
    """Apex and half-angle of the sector symmetric about a vertical axis that best fits both
    sides' inlier extents, if it fits them about as well as two independent lines.

    Scanners build the sector symmetric about its axis, so fitting both edges together
    halves the noise of a dim, ragged edge. A steered or skewed sector fails the test and
    keeps its independent edges. Returns ((apex_row, apex_col), half_angle_deg) or None.
    """
    rows_l, cols_l = left_line[2], left_line[3]
    rows_r, cols_r = right_line[2], right_line[3]
    # col = c - t * row + k on the left, c + t * row - k on the right (k = t * apex_row).
    design = np.concatenate(
        [
            np.column_stack([np.ones_like(rows_l), -rows_l, np.ones_like(rows_l)]),
            np.column_stack([np.ones_like(rows_r), rows_r, -np.ones_like(rows_r)]),
        ]
    )
    target = np.concatenate([cols_l, cols_r])
    (centre, slope, k), *_ = np.linalg.lstsq(design, target, rcond=None)
    if slope <= 0:
        return None
    symmetric_rms = float(np.sqrt(np.mean((design @ np.array([centre, slope, k]) - target) ** 2)))
    independent = np.concatenate(
        [cols_l - (left_line[0] * rows_l + left_line[1]), cols_r - (right_line[0] * rows_r + right_line[1])]
    )
    independent_rms = float(np.sqrt(np.mean(independent**2)))
    if symmetric_rms > 1.5 * independent_rms + 0.5:
        return None
    return (k / slope, centre), math.degrees(math.atan(slope))


def _fit_sector(hull: np.ndarray, region: np.ndarray) -> _SectorFit | None:
    """Apex (row, col), (left, right) degrees and (inner, outer) radii in working pixels, or None.

    The side edges and the far edge come from the convex ``hull``; the near edge, which
    curves inwards on a convex probe, from the ``region`` itself.
    """
    height, width = region.shape
    # Side edges from the region's own row extents: hull edges are straight by construction
    # and would line up better than the true sides where dark areas cut the corners.
    rows = np.flatnonzero(region.any(axis=1))
    left = region[rows].argmax(axis=1)
    right = width - 1 - region[rows, ::-1].argmax(axis=1)
    # Only rows whose extent ends inside the frame show the side edges (morphology and
    # resampling can leave a clipped edge a pixel or two short of the border).
    on_left = left > 2
    on_right = right < width - 3
    region, near = hull, region
    left_line = _side_line(rows[on_left].astype(float), left[on_left].astype(float), outward=-1)
    right_line = _side_line(rows[on_right].astype(float), right[on_right].astype(float), outward=+1)
    apex = None
    if left_line is not None and right_line is not None:
        (slope_l, offset_l), (slope_r, offset_r) = left_line[:2], right_line[:2]
        angles = (math.degrees(math.atan(slope_l)), math.degrees(math.atan(slope_r)))
        # Scanners point the sector's axis straight down: the left edge leans left, the
        # right edge right, and the whole opening is at least 10 degrees.
        if angles[0] < -1.0 and angles[1] > 1.0 and angles[1] - angles[0] >= 10.0:
            apex_row = (offset_l - offset_r) / (slope_r - slope_l)
            apex = (apex_row, slope_l * apex_row + offset_l)
            symmetric = _symmetric_sides(left_line, right_line)
            if symmetric is not None:
                apex, half_angle = symmetric
                angles = (-half_angle, half_angle)
    from_side_edges = apex is not None
    if apex is None:
        fitted = _sector_from_arc(region)
        if fitted is None:
            return None
        apex, angles = fitted
    rows = np.flatnonzero(region.any(axis=1))
    if apex[0] > rows[0] + 0.25 * (rows[-1] - rows[0]):
        return None  # an apex inside the lower image is no ultrasound sector
    radii = _sector_radii(near, region, apex, angles)
    if radii is None:
        return None
    return _SectorFit((apex, angles, radii), from_side_edges)


def _polar(
    region: np.ndarray, apex: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    pixel_rows, pixel_cols = np.nonzero(region)
    d_rows, d_cols = pixel_rows - apex[0], pixel_cols - apex[1]
    return pixel_rows, pixel_cols, np.hypot(d_rows, d_cols), np.degrees(np.arctan2(d_cols, d_rows))


def _sector_radii(near: np.ndarray, far: np.ndarray, apex, angles) -> tuple[float, float] | None:
    """(inner, outer): the nearest pixel of ``near`` and the farthest of ``far`` in angular
    bins of the central span, as a low (high) percentile over the bins.

    Where the fan is dark at depth a bin's farthest pixel falls short of the far edge, so
    the outer radius comes from the bins that reach farthest (90th percentile), the inner
    from those that reach nearest (10th). Bins whose extreme pixel lies on the frame
    border are clipped by the frame and say nothing about the edge; if every bin is
    clipped the extreme distance is used.
    """
    left, right = angles
    span = right - left
    inner_edges, inner_all = _edge_distances(near, apex, left + 0.1 * span, 0.8 * span, nearest=True)
    outer_edges, outer_all = _edge_distances(far, apex, left + 0.1 * span, 0.8 * span, nearest=False)
    if inner_all is None or outer_all is None:
        return None
    inner = float(np.percentile(inner_edges, 10)) - 0.5 if inner_edges else inner_all - 1.0
    outer = float(np.percentile(outer_edges, 90)) + 0.5 if outer_edges else outer_all + 1.0
    inner = max(inner, 0.0)
    return (inner, outer) if outer > inner else None


def _edge_distances(mask: np.ndarray, apex, start: float, span: float, nearest: bool, n_bins: int = 24):
    """Per angular bin in [start, start + span]: the nearest (or farthest) pixel's distance
    from the apex, leaving out pixels on the frame border; and the overall extreme."""
    height, width = mask.shape
    pixel_rows, pixel_cols, distance, angle = _polar(mask, apex)
    inside = (angle >= start) & (angle <= start + span)
    if inside.sum() < 10:
        return [], None
    rows, cols, distance = pixel_rows[inside], pixel_cols[inside], distance[inside]
    bins = np.minimum(((angle[inside] - start) / span * n_bins).astype(int), n_bins - 1)
    on_border = (rows == 0) | (rows == height - 1) | (cols == 0) | (cols == width - 1)
    edges = []
    for index in range(n_bins):
        members = np.flatnonzero(bins == index)
        if members.size == 0:
            continue
        pick = members[distance[members].argmin() if nearest else distance[members].argmax()]
        if not on_border[pick]:
            edges.append(float(distance[pick]))
    overall = float(distance.min() if nearest else distance.max())
    return edges, overall


def _sector_from_arc(region: np.ndarray):
    """Apex and angles from the curvature of the far (or near) edge, when the sides are out of frame."""
    height, width = region.shape
    cols = np.flatnonzero(region.any(axis=0))
    cols = cols[(cols > 0) & (cols < width - 1)]
    for edge in ("bottom", "top"):
        if edge == "bottom":
            rows = height - 1 - region[::-1, cols].argmax(axis=0)
            keep = rows < height - 1
        else:
            rows = region[:, cols].argmax(axis=0)
            keep = rows > 0
        if keep.sum() < 10:
            continue
        circle = _fit_circle(rows[keep].astype(float), cols[keep].astype(float))
        if circle is None:
            continue
        centre_row, centre_col, radius = circle
        if radius > 20 * max(height, width) or centre_row > rows[keep].min():
            continue  # (nearly) straight, or bending the wrong way: not a sector arc
        apex = (centre_row, centre_col)
        _, _, _, angle = _polar(region, apex)
        return apex, (float(angle.min()) - 0.5, float(angle.max()) + 0.5)
    return None


def _fit_circle(rows: np.ndarray, cols: np.ndarray) -> tuple[float, float, float] | None:
    """Algebraic (Kasa) least-squares circle through points; (centre_row, centre_col, radius)."""
    design = np.column_stack([rows, cols, np.ones_like(rows)])
    target = -(rows**2 + cols**2)
    try:
        (d, e, f), *_ = np.linalg.lstsq(design, target, rcond=None)
    except np.linalg.LinAlgError:
        return None
    centre_row, centre_col = -d / 2.0, -e / 2.0
    squared = centre_row**2 + centre_col**2 - f
    return (centre_row, centre_col, math.sqrt(squared)) if squared > 0 else None


# --------------------------------------------------------------------------- SlicerUltrasound sidecar


def fan_sidecar_path(clip_path: str | Path) -> Path | None:
    """The AnonymizeUltrasound JSON beside a clip (``<clip stem>.json``), if there is one."""
    path = Path(clip_path)
    candidates = [path.with_suffix(".json")]
    if len(path.suffixes) > 1:  # clip.seq.nrrd -> clip.json
        candidates.append(path.with_name(path.name.split(".")[0] + ".json"))
    for candidate in candidates:
        if candidate != path and candidate.is_file():
            return candidate
    return None


def read_fan_sidecar(json_path: str | Path, shape: tuple[int, int]) -> FanGeometry | None:
    """The fan an AnonymizeUltrasound JSON describes, or None if the JSON holds no mask.

    Schema followed: SlicerUltrasound/SlicerUltrasound, AnonymizeUltrasound/AnonymizeUltrasound.py
    (createFanMask, createRectangleMask, exportDicom) and common/dicom_processor.py
    (_save_sequence_info, which nests the same keys under "MaskConfig"). Fan keys:
    mask_type "fan", angle1/angle2 in OpenCV degrees (from the +column axis towards +row,
    so straight down is 90 and angle1 > 90 is the left edge), center_rows_px/center_cols_px
    (the apex; may be negative, above the image), radius1/radius2 (either order),
    image_size_rows/image_size_cols. Rectangle keys: rectangle_left/right/top/bottom.
    """
    path = Path(json_path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as error:
        raise LungUSError(f"unreadable fan JSON ({error_detail(error)})", path) from error
    if not isinstance(record, dict):
        return None
    config = record.get("MaskConfig") if isinstance(record.get("MaskConfig"), dict) else record
    mask_type = config.get("mask_type")
    if mask_type is None and "angle1" in config:
        mask_type = "fan"  # older exports had no mask_type: fan was the only kind
    if mask_type is None:
        return None
    height, width = shape

    def number(key: str) -> float:
        if key not in config:
            raise LungUSError(f"fan JSON has no {key!r}, which mask_type {mask_type!r} needs", path)
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise LungUSError(f"fan JSON {key!r} is a JSON {json_type_name(value)}, not a number", path)
        try:
            result = float(value)
        except ValueError:
            raise LungUSError(f"fan JSON {key!r} is {str(value)[:40]!r}, not a number", path) from None
        if not math.isfinite(result):
            raise LungUSError(f"fan JSON {key!r} is {result}, not a finite number", path)
        return result

    if config.get("image_size_rows") is not None and config.get("image_size_cols") is not None:
        rows, cols = number("image_size_rows"), number("image_size_cols")
        if (rows, cols) != (height, width):
            raise LungUSError(
                f"fan JSON is for a {rows:g}x{cols:g} image but the clip is {height}x{width}", path
            )
    if mask_type == "fan":
        apex = (number("center_rows_px"), number("center_cols_px"))
        angles = tuple(sorted((90.0 - number("angle1"), 90.0 - number("angle2"))))
        radii = tuple(sorted((number("radius1"), number("radius2"))))
        mask = sector_mask(shape, apex, angles, radii)
        return FanGeometry(
            mask, "sector", apex=apex, angles_deg=angles, radii=radii, source="slicer-ultrasound-json"
        )
    if mask_type == "rectangle":
        bbox = tuple(number(f"rectangle_{side}") for side in ("top", "left", "bottom", "right"))
        return FanGeometry(rectangle_mask(shape, bbox), "linear", source="slicer-ultrasound-json")
    raise LungUSError(
        f"fan JSON has unknown mask_type {str(mask_type)[:40]!r} (expected 'fan' or 'rectangle')", path
    )


def fan_sidecar_record(fan: FanGeometry) -> dict:
    """A fan as the AnonymizeUltrasound JSON keys :func:`read_fan_sidecar` reads back: a sector
    as mask_type "fan" (apex, OpenCV angles, radii), anything else as the rectangle of its
    mask's bounding box (end-exclusive), with image_size_rows/cols."""
    height, width = fan.mask.shape
    record: dict = {"image_size_rows": int(height), "image_size_cols": int(width)}
    if fan.kind == "sector" and fan.apex is not None and fan.angles_deg is not None and fan.radii is not None:
        left, right = sorted(float(angle) for angle in fan.angles_deg)
        record.update(mask_type="fan", angle1=90.0 - left, angle2=90.0 - right,
                      center_rows_px=float(fan.apex[0]), center_cols_px=float(fan.apex[1]),
                      radius1=float(min(fan.radii)), radius2=float(max(fan.radii)))
    else:
        top, left_col, bottom, right_col = fan.bbox
        record.update(mask_type="rectangle", rectangle_top=top, rectangle_left=left_col,
                      rectangle_bottom=bottom, rectangle_right=right_col)
    return record


# --------------------------------------------------------------------------- masking


def crop_to_fan(clip: Clip, fan: FanGeometry | None = None) -> Clip:
    """The clip cropped to its fan's bounding box, with every pixel outside the fan set to 0.

    Burned-in text, calipers and logos outside the fan are gone afterwards, which also
    de-identifies the pixels. Uses ``fan``, else ``clip.fan``, else detects it.
    """
    fan = fan or clip.fan or detect_fan(clip.frames)
    if fan.mask.shape != (clip.height, clip.width):
        raise ValueError(f"fan mask {fan.mask.shape} does not match the frames {(clip.height, clip.width)}")
    row0, col0, row1, col1 = fan.bbox
    mask = fan.mask[row0:row1, col0:col1]
    frames = np.where(mask, clip.frames[:, row0:row1, col0:col1], 0).astype(np.uint8)
    rgb = None
    if clip.rgb is not None:
        rgb = np.where(mask[:, :, None], clip.rgb[:, row0:row1, col0:col1], 0).astype(np.uint8)
    apex = None if fan.apex is None else (fan.apex[0] - row0, fan.apex[1] - col0)
    cropped_fan = FanGeometry(
        mask.copy(), fan.kind, apex=apex, angles_deg=fan.angles_deg, radii=fan.radii, source=fan.source
    )
    meta = dict(clip.meta)
    meta.update(
        fan_cropped=True,
        fan_bbox=[row0, col0, row1, col1],
        original_size=[clip.height, clip.width],
    )
    return Clip(
        frames,
        fps=clip.fps,
        spacing_mm=clip.spacing_mm,
        source=clip.source,
        meta=meta,
        fan=cropped_fan,
        rgb=rgb,
    )
