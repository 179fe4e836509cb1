"""What a sequence of class masks says about B-lines: counts, positions, widths, confluence, BLAS.

Works the same on predicted masks (inference, evaluation) and on truth (the simulator's
masks, masks drawn from annotations). Everything outside the fan is ignored.

**Counts** follow the rules of :mod:`lungus.data.labels.bline_rules` (the simulator's truth is
:func:`masks_truth`, so a simulated clip's counts here equal its truth): each connected
(8-neighbour) B-line region counts 1, each confluent region ``max(2, round(10 x share))``.
The instances are found for all frames at once (one labelling call per class, statistics
from row runs).

**Lateral coordinate**: for a sector (convex, phased) fan the angle about the apex in
degrees from straight down, negative to the left (``position_unit`` "deg"); otherwise the
image column ("px"). The lateral extent of a set of pixels is the union of their centres'
intervals, each widened by half a pixel at the bottom of the fan, with the gaps closed that
near a sector's apex open between neighbouring pixels (it is the shadow the pixels cast
on the pleura).

- **Positions**: a region's B-lines spread evenly across its lateral extent (one B-line:
  the middle). ``columns`` keeps the truth's positions (image columns at the top of
  each region). ``position_tolerance`` for localisation F1 is POSITION_TOLERANCE_SHARE
  (5 %) of the fan's lateral span: about 3.5 degrees for a 70-degree sector, 12.8 pixels
  for a 256-pixel-wide linear image.
- **Width** of a region: its lateral extent.
- **Intercostal space**: the lateral extent of pleural line, B-line and confluent pixels
  together: the visible pleura between rib shadows (where a B-line is seen the pleura is
  there, even if a mask paints the B-line right up to the surface).
- **B-line artefact score (BLAS)**: the share of the intercostal space under B-lines
  (discrete or confluent), in percent: Howell et al. 2024's BLAS (% of the intercostal
  space occupied by B-lines) and SlicerUltrasound AnnotateUltrasound's pleuraPercentage
  (B-line sectors over pleura sectors; sectors span the whole depth, so that too is a
  lateral share). None where a frame shows no intercostal space.
- **Confluent share**: the share of the intercostal space under confluent B-lines (0..1).

Per clip: the maximum and mean count, the number of frames with B-lines, the maximum and
mean BLAS (over frames that show an intercostal space), and the top frame (most B-lines,
then highest BLAS, then earliest; None when no frame has B-lines): the clips.csv and
frames.csv fields of docs/architecture.md#inference-outputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from lungus.data.labels.bline_rules import (
    BLineInstance,
    FrameTruth,
    LateralCoordinate,
    confluent_instance,
    discrete_instance,
    frame_truth,
)
from lungus.data.labels.schemes import B_LINE, CONFLUENT, PLEURA
from lungus.io.clip import FanGeometry

POSITION_TOLERANCE_SHARE = 0.05
#: A clip's B-line evidence: the MaskAnalysis properties that clips.csv reports per clip and
#: lungus.evaluate.clip_evidence scores against clip labels.
CLIP_EVIDENCE = ("bline_count_max", "bline_count_mean", "frames_with_blines", "blas_max", "blas_mean")

# Class sets as bit flags per class id: 1 intercostal space, 2 B-line (any), 4 confluent.
_SPACE, _BLINE, _CONFLUENT = 1, 2, 4
_FLAGS = np.zeros(256, dtype=np.uint8)
_FLAGS[PLEURA] = _SPACE
_FLAGS[B_LINE] = _SPACE | _BLINE
_FLAGS[CONFLUENT] = _SPACE | _BLINE | _CONFLUENT


@dataclass(frozen=True)
class BLineRegion:
    """One B-line region of a frame.

    kind: "discrete" or "confluent"; count: B-lines it stands for; position: lateral
    position (degrees or pixels, see MaskAnalysis.position_unit); column: image column at its
    top (as the truth's positions give it); width: lateral extent of its shadow on the pleura.
    """

    kind: str
    count: int
    position: float
    column: float
    width: float


@dataclass
class MaskAnalysis:
    """Per-frame and per-clip B-line measures of a (T, H, W) class-mask sequence."""

    position_unit: str  # "deg" (angle about the apex) or "px" (image column)
    position_tolerance: float
    bline_count: np.ndarray  # (T,) int
    regions: list[tuple[BLineRegion, ...]]
    positions: list[tuple[float, ...]]  # one per counted B-line, in position_unit
    columns: list[tuple[float, ...]]  # the same B-lines as image columns (FrameTruth.positions)
    blas: list[float | None]  # percent
    confluent_share: np.ndarray  # (T,) 0..1
    intercostal_extent: np.ndarray  # (T,) lateral extent of the intercostal space, in position_unit

    @property
    def n_frames(self) -> int:
        return int(self.bline_count.shape[0])

    @property
    def bline_count_max(self) -> int:
        return int(self.bline_count.max()) if self.n_frames else 0

    @property
    def bline_count_mean(self) -> float:
        return float(self.bline_count.mean()) if self.n_frames else 0.0

    @property
    def frames_with_blines(self) -> int:
        return int(np.count_nonzero(self.bline_count))

    @property
    def blas_max(self) -> float | None:
        values = [v for v in self.blas if v is not None]
        return max(values) if values else None

    @property
    def blas_mean(self) -> float | None:
        values = [v for v in self.blas if v is not None]
        return float(np.mean(values)) if values else None

    @property
    def top_frame(self) -> int | None:
        if not self.frames_with_blines:
            return None
        blas = np.array([-1.0 if v is None else v for v in self.blas])
        order = np.lexsort((np.arange(self.n_frames), -blas, -self.bline_count))
        return int(order[0])

    def clip_evidence(self) -> dict[str, float | int | None]:
        """The :data:`CLIP_EVIDENCE` values, unrounded."""
        return {name: getattr(self, name) for name in CLIP_EVIDENCE}

    def clip_summary(self) -> dict[str, float | int | None]:
        """The B-line columns of clips.csv (docs/architecture.md#inference-outputs)."""
        return {
            "bline_count_max": self.bline_count_max,
            "bline_count_mean": round(self.bline_count_mean, 4),
            "frames_with_blines": self.frames_with_blines,
            "blas_max": None if self.blas_max is None else round(self.blas_max, 2),
            "blas_mean": None if self.blas_mean is None else round(self.blas_mean, 2),
            "top_frame": self.top_frame,
        }

    def frame_records(self) -> list[dict[str, object]]:
        """One JSON-able record per frame: count, BLAS, confluent share, positions."""
        return [
            {
                "frame": t,
                "bline_count": int(self.bline_count[t]),
                "blas": None if self.blas[t] is None else round(self.blas[t], 2),
                "confluent_share": round(float(self.confluent_share[t]), 4),
                "positions": [round(p, 2) for p in self.positions[t]],
            }
            for t in range(self.n_frames)
        ]


class _LateralGrid:
    """The lateral coordinate of every pixel centre, and a fine grid of bins over it.

    A pixel covers its centre +- ``half`` (half a pixel at the bottom of the fan); gaps of up
    to ``gap_bins`` between covered bins are closed, as near a sector's apex neighbouring
    pixels lie further apart than that.
    """

    def __init__(self, shape: tuple[int, int], fan: FanGeometry | None) -> None:
        height, width = shape
        rows = np.arange(height, dtype=np.float64)[:, None]
        cols = np.arange(width, dtype=np.float64)[None, :]
        inside = fan.mask if fan is not None and fan.mask.any() else np.ones(shape, dtype=bool)
        self.sector = fan is not None and fan.kind == "sector" and fan.apex is not None
        if self.sector:
            self.apex = (float(fan.apex[0]), float(fan.apex[1]))
            d_row, d_col = rows - self.apex[0], cols - self.apex[1]
            centre = np.degrees(np.arctan2(d_col, d_row))
            radius = np.hypot(d_row, d_col)[inside]
            nearest, farthest = max(float(radius.min()), 1.0), max(float(radius.max()), 1.0)
            self.half = math.degrees(0.5 / farthest)
            # A diagonal step between neighbouring pixels, at the radius nearest the apex.
            gap = math.degrees(1.5 / nearest) - 2 * self.half
            self.unit = "deg"
        else:
            centre = np.broadcast_to(cols, shape)
            self.half, gap = 0.5, 0.0
            self.unit = "px"
        self.centre = np.ascontiguousarray(centre).ravel()
        self.bin_size = self.half
        low = float(centre[inside].min()) - self.half
        high = float(centre[inside].max()) + self.half
        self.low, self.span = low, high - low
        self.n_bins = max(1, int(math.ceil(self.span / self.bin_size)))
        self.gap_bins = int(math.ceil(max(gap, 0.0) / self.bin_size))

    def bins(self, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First and last bin of the lateral intervals [low, high)."""
        first = np.floor((low - self.low) / self.bin_size + 1e-9).astype(np.int64)
        last = np.ceil((high - self.low) / self.bin_size - 1e-9).astype(np.int64) - 1
        return np.clip(first, 0, self.n_bins - 1), np.clip(np.maximum(last, first), 0, self.n_bins - 1)

    def lateral(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Lateral coordinate at (fractional) pixel positions."""
        if self.sector:
            return np.degrees(np.arctan2(cols - self.apex[1], rows - self.apex[0]))
        return np.asarray(cols, dtype=np.float64)

    def close_gaps(self, occupied: np.ndarray) -> np.ndarray:
        """(T, n_bins) occupancy with gaps of up to gap_bins filled (ends are not moved)."""
        k = (self.gap_bins + 1) // 2
        if k == 0:
            return occupied
        n = occupied.shape[1]
        # Dilate then erode by k bins (a closing), with k empty bins beyond each end.
        padded = np.zeros((occupied.shape[0], n + 2 * k), dtype=bool)
        padded[:, k : k + n] = occupied
        dilated = _window_sum(padded, k) > 0
        return (_window_sum(~dilated, k) == 0)[:, k : k + n] & dilated[:, k : k + n]


def _window_sum(values: np.ndarray, k: int) -> np.ndarray:
    """Sum over the 2k + 1 neighbouring bins of each bin (bins beyond the ends count 0)."""
    n = values.shape[1]
    cumulative = np.zeros((values.shape[0], n + 2 * k + 1), dtype=np.int64)
    np.cumsum(values, axis=1, out=cumulative[:, k + 1 : k + 1 + n])
    cumulative[:, k + 1 + n :] = cumulative[:, k + n : k + n + 1]
    return cumulative[:, 2 * k + 1 :] - cumulative[:, :n]


@dataclass
class _Runs:
    """Maximal runs of one class along the rows of a (T, H, W) mask sequence (class != 0 only)."""

    frame: np.ndarray
    row: np.ndarray  # row within the frame
    start: np.ndarray  # first column
    end: np.ndarray  # last column
    value: np.ndarray  # class id


def _row_runs(masks: np.ndarray) -> _Runs:
    """One pass over the masks: where the class changes along a row, and the runs between."""
    n_frames, height, width = masks.shape
    rows = masks.reshape(n_frames * height, width)
    n_rows = rows.shape[0]
    boundary = np.flatnonzero(rows[:, 1:] != rows[:, :-1]) if width > 1 else np.zeros(0, np.intp)
    b_row, b_col = np.divmod(boundary, max(width - 1, 1))
    # Runs start at column 0 of every row and right of every boundary; merge both in row order.
    total = n_rows + boundary.size
    run_row = np.empty(total, dtype=np.intp)
    run_start = np.empty(total, dtype=np.intp)
    at_row_start = np.arange(n_rows) + np.searchsorted(b_row, np.arange(n_rows))
    after_boundary = np.arange(boundary.size) + b_row + 1
    run_row[at_row_start], run_start[at_row_start] = np.arange(n_rows), 0
    run_row[after_boundary], run_start[after_boundary] = b_row, b_col + 1
    run_end = np.full(total, width - 1, dtype=np.intp)
    same_row = run_row[1:] == run_row[:-1]
    run_end[:-1][same_row] = run_start[1:][same_row] - 1
    value = rows[run_row, run_start]
    keep = value != 0
    frame, row = np.divmod(run_row[keep], height)
    return _Runs(frame, row, run_start[keep], run_end[keep], value[keep])


def _occupancy(runs: _Runs, n_frames: int, width: int, grid: _LateralGrid) -> dict[int, np.ndarray]:
    """(T, n_bins) bool lateral occupancy of each class set (_SPACE, _BLINE, _CONFLUENT).

    The lateral coordinate grows along a row, so a run covers the lateral interval from its
    first to its last pixel: only the ends of runs are looked at.
    """
    stride = grid.n_bins + 1
    flags = _FLAGS[runs.value]
    first_all, last_all = grid.bins(
        grid.centre[runs.row * width + runs.start] - grid.half,
        grid.centre[runs.row * width + runs.end] + grid.half,
    )
    occupancy = {}
    for flag in (_SPACE, _BLINE, _CONFLUENT):
        member = (flags & flag) != 0
        first, last, frame = first_all[member], last_all[member], runs.frame[member]
        low, high = np.minimum(first, last), np.maximum(first, last)
        diff = np.bincount(frame * stride + low, minlength=n_frames * stride).astype(np.int64)
        diff -= np.bincount(frame * stride + high + 1, minlength=n_frames * stride)
        covered = np.cumsum(diff.reshape(n_frames, stride), axis=1)[:, : grid.n_bins] > 0
        occupancy[flag] = grid.close_gaps(covered)
    return occupancy


class _TruthBins:
    """The truth rules' lateral bins (bline_rules.LateralCoordinate, of pixel centres), and which
    rows hit every bin they span."""

    def __init__(self, lateral: LateralCoordinate, shape: tuple[int, int]) -> None:
        self.bins = np.ascontiguousarray(np.broadcast_to(lateral.bins, shape))
        self.n_bins = lateral.n_bins
        steps = np.diff(self.bins, axis=1)
        # In a dense row neighbouring pixels never skip a bin, so a run of pixels covers every
        # bin between its end pixels' bins; near the apex of a sector rows skip bins.
        self.dense_row = (np.abs(steps) <= 1).all(axis=1) if steps.size else np.ones(shape[0], dtype=bool)

    def distinct(
        self, group: np.ndarray, row: np.ndarray, start: np.ndarray, end: np.ndarray, n_groups: int
    ) -> np.ndarray:
        """Distinct bins hit by the pixels of the runs of each group: (n_groups,) counts."""
        n_bins = self.n_bins
        dense = self.dense_row[row]
        low, high = self.bins[row[dense], start[dense]], self.bins[row[dense], end[dense]]
        low, high = np.minimum(low, high), np.maximum(low, high)
        stride = n_bins + 1
        diff = np.bincount(group[dense] * stride + low, minlength=n_groups * stride).astype(np.int64)
        diff -= np.bincount(group[dense] * stride + high + 1, minlength=n_groups * stride)
        occupied = np.cumsum(diff.reshape(n_groups, stride), axis=1)[:, :n_bins] > 0
        sparse = ~dense
        if sparse.any():
            # Runs near the apex, where rows skip bins: pixel by pixel, unless every bin they
            # span is already hit (B-lines reach the dense rows below, so this is most of them).
            low = self.bins[row[sparse], start[sparse]]
            high = self.bins[row[sparse], end[sparse]]
            low, high = np.minimum(low, high), np.maximum(low, high)
            hit_before = np.zeros((n_groups, n_bins + 1), dtype=np.int64)
            np.cumsum(occupied, axis=1, out=hit_before[:, 1:])
            g = group[sparse]
            sparse[sparse] = hit_before[g, high + 1] - hit_before[g, low] < high - low + 1
        if sparse.any():
            length = end[sparse] - start[sparse] + 1
            offset = np.repeat(np.cumsum(length) - length, length)
            cols = np.repeat(start[sparse], length) + (np.arange(int(length.sum())) - offset)
            rows, groups = np.repeat(row[sparse], length), np.repeat(group[sparse], length)
            hits = np.bincount(groups * n_bins + self.bins[rows, cols], minlength=n_groups * n_bins)
            occupied |= hits.reshape(n_groups, n_bins) > 0
        return np.count_nonzero(occupied, axis=1)


@dataclass
class _Components:
    """Connected regions (8-connectivity) of one class, and which region each of its runs is in."""

    frame: np.ndarray  # (n,) frame of each region
    first: np.ndarray  # first, last, mean column of the region's top four rows
    last: np.ndarray
    centre: np.ndarray
    order: np.ndarray  # flat index of its first pixel (a stable tie-break)
    lateral_low: np.ndarray  # lateral extent of its pixel centres
    lateral_high: np.ndarray
    run_member: np.ndarray  # which runs are of this class
    run_region: np.ndarray  # their region index


def _components(masks: np.ndarray, runs: _Runs, class_id: int, grid: _LateralGrid) -> _Components:
    """Regions of ``class_id``, labelled in one OpenCV call over the frames stacked with gaps.

    Their top-row statistics come from the row runs (no further pass over the pixels)."""
    n_frames, height, width = masks.shape
    member = runs.value == class_id
    frames = np.flatnonzero(np.bincount(runs.frame[member], minlength=n_frames))
    if not frames.size:
        empty = np.zeros(0, dtype=np.intp)
        return _Components(empty, *([empty * 1.0] * 3), empty, empty * 1.0, empty * 1.0, member, empty)
    stack = np.zeros((frames.size, height + 1, width), dtype=np.uint8)
    np.equal(masks[frames], class_id, out=stack[:, :height].view(bool))
    n, labels = cv2.connectedComponents(stack.reshape(-1, width), connectivity=8, ltype=cv2.CV_32S)
    slot = np.full(n_frames, -1, dtype=np.intp)
    slot[frames] = np.arange(frames.size)
    r_frame, r_row, r_start, r_end = (
        runs.frame[member],
        runs.row[member],
        runs.start[member],
        runs.end[member],
    )
    stacked_row = slot[r_frame] * (height + 1) + r_row
    label = labels[stacked_row, r_start]
    top = np.full(n, np.iinfo(np.intp).max, dtype=np.intp)
    np.minimum.at(top, label, r_row)
    order = np.full(n, np.iinfo(np.intp).max, dtype=np.intp)
    np.minimum.at(order, label, stacked_row * width + r_start)
    frame = np.zeros(n, dtype=np.intp)
    frame[label] = r_frame
    window = r_row <= top[label] + 3  # the truth's columns are those of the top four rows
    w_label, w_start, w_end = label[window], r_start[window], r_end[window]
    length = w_end - w_start + 1
    col_sum = np.bincount(w_label, weights=(w_start + w_end) * length // 2, minlength=n)
    count = np.bincount(w_label, weights=length, minlength=n)
    first = np.full(n, width, dtype=np.intp)
    last = np.full(n, -1, dtype=np.intp)
    np.minimum.at(first, w_label, w_start)
    np.maximum.at(last, w_label, w_end)
    with np.errstate(divide="ignore", invalid="ignore"):
        centre = col_sum / count
    lateral_low = np.full(n, np.inf)
    lateral_high = np.full(n, -np.inf)
    np.minimum.at(lateral_low, label, grid.centre[r_row * width + r_start])
    np.maximum.at(lateral_high, label, grid.centre[r_row * width + r_end])
    regions = slice(1, n)  # label 0 is the background
    return _Components(
        frame[regions],
        first[regions].astype(float),
        last[regions].astype(float),
        centre[regions],
        order[regions],
        lateral_low[regions],
        lateral_high[regions],
        member,
        label - 1,
    )


def _clip_instances(
    masks: np.ndarray, runs: _Runs, lateral: LateralCoordinate, grid: _LateralGrid
) -> list[list[tuple[BLineInstance, float, float]]]:
    """Per frame, the B-line instances (left to right), with the lateral extent (low, high) of
    each region's pixel centres: found for all frames at once (one labelling call per class,
    statistics from row runs), counted by the rules of lungus.data.labels.bline_rules.

    Regions left to right by the column of their top; a discrete region before a confluent
    one at the same column, then the one whose first pixel comes first."""
    n_frames, height, width = masks.shape
    found: list[list[tuple]] = [[] for _ in range(n_frames)]
    discrete = _components(masks, runs, B_LINE, grid)
    for index, frame in enumerate(discrete.frame):
        centre = float(discrete.centre[index])
        instance = discrete_instance(centre)
        extent = (float(discrete.lateral_low[index]), float(discrete.lateral_high[index]))
        found[frame].append((centre, 0, int(discrete.order[index]), instance, extent))

    confluent = _components(masks, runs, CONFLUENT, grid)
    if confluent.frame.size:
        truth_bins = _TruthBins(lateral, (height, width))
        member = confluent.run_member
        region_bins = truth_bins.distinct(
            confluent.run_region, runs.row[member], runs.start[member], runs.end[member], confluent.frame.size
        )
        # The intercostal space (pleura, B-line, confluent runs) of every frame.
        space = (_FLAGS[runs.value] & _SPACE) != 0
        space_bins = truth_bins.distinct(
            runs.frame[space], runs.row[space], runs.start[space], runs.end[space], n_frames
        )
        for index, frame in enumerate(confluent.frame):
            share = int(region_bins[index]) / max(int(space_bins[frame]), 1)
            first, last = float(confluent.first[index]), float(confluent.last[index])
            centre = float(confluent.centre[index])
            instance = confluent_instance(first, last, centre, share)
            extent = (float(confluent.lateral_low[index]), float(confluent.lateral_high[index]))
            found[frame].append((centre, 1, int(confluent.order[index]), instance, extent))
    return [[(item[3], *item[4]) for item in sorted(items, key=lambda item: item[:3])] for items in found]


def _class_masks(masks: np.ndarray) -> np.ndarray:
    """(T, H, W) uint8 class ids from (T, H, W) or (H, W) integer masks; ValueError otherwise."""
    masks = np.asarray(masks)
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim != 3:
        raise ValueError(f"masks must be (T, H, W) class ids, got shape {masks.shape}")
    if not np.issubdtype(masks.dtype, np.integer):
        raise ValueError(f"masks must hold integer class ids, got {masks.dtype}")
    if masks.dtype != np.uint8:
        if masks.size and (masks.min() < 0 or masks.max() > 255):
            raise ValueError("masks must hold class ids 0..255")
        masks = masks.astype(np.uint8)
    return masks


def clip_instances(masks: np.ndarray, fan: FanGeometry | None = None) -> list[list[BLineInstance]]:
    """The B-line instances of every frame of (T, H, W) (or (H, W)) class masks, left to right.

    ``fan`` gives the lateral coordinate of the confluent share (angle about the apex for
    sectors); pixels outside it count too (:func:`analyse_masks` clears them first).
    """
    masks = _class_masks(masks)
    shape = masks.shape[1:]
    grid = _LateralGrid(shape, fan)
    found = _clip_instances(masks, _row_runs(masks), LateralCoordinate(shape, fan), grid)
    return [[instance for instance, _, _ in frame] for frame in found]


def masks_truth(masks: np.ndarray, fan: FanGeometry | None = None) -> list[FrameTruth]:
    """Per-frame truth (count, discrete, confluent regions and share, positions) of class masks."""
    return [frame_truth(instances) for instances in clip_instances(masks, fan)]


def count_blines(mask: np.ndarray, fan: FanGeometry | None = None) -> int:
    """B-line count of one (H, W) class mask by the rules of lungus.data.labels.bline_rules."""
    return masks_truth(mask, fan)[0].bline_count


def analyse_masks(masks: np.ndarray, fan: FanGeometry | None = None) -> MaskAnalysis:
    """B-line measures of (T, H, W) (or (H, W)) class masks, ids of lungus.data.labels.schemes.

    ``fan`` gives the lateral coordinate (angle about the apex for sectors) and limits the
    analysis to the fan; without it the lateral coordinate is the image column.
    """
    masks = _class_masks(masks)
    shape = masks.shape[1:]
    if fan is not None:
        if fan.mask.shape != shape:
            raise ValueError(f"fan mask shape {fan.mask.shape} differs from the mask shape {shape}")
        if not fan.mask.all():
            masks = masks * fan.mask[None].view(np.uint8)

    n_frames, height, width = masks.shape
    grid = _LateralGrid(shape, fan)
    runs = _row_runs(masks)
    occupancy = _occupancy(runs, n_frames, width, grid)
    space = occupancy[_SPACE].sum(axis=1)
    bline_bins = occupancy[_BLINE].sum(axis=1)

    instances_per_frame = _clip_instances(masks, runs, LateralCoordinate(shape, fan), grid)
    counts = np.zeros(n_frames, dtype=np.int64)
    regions: list[tuple[BLineRegion, ...]] = [()] * n_frames
    positions: list[tuple[float, ...]] = [()] * n_frames
    columns: list[tuple[float, ...]] = [()] * n_frames
    for t, instances in enumerate(instances_per_frame):
        if not instances:
            continue
        counts[t] = sum(inst.count for inst, _, _ in instances)
        columns[t] = tuple(p for inst, _, _ in instances for p in inst.positions)
        frame_regions, frame_positions = [], []
        for inst, low, high in instances:
            # A region standing for n B-lines puts them evenly across its lateral extent.
            step = (high - low) / inst.count
            frame_positions += [low + step * (i + 0.5) for i in range(inst.count)]
            centre = 0.5 * (low + high)
            frame_regions.append(
                BLineRegion(inst.kind, inst.count, centre, inst.column, high - low + 2 * grid.half)
            )
        regions[t], positions[t] = tuple(frame_regions), tuple(frame_positions)

    with np.errstate(divide="ignore", invalid="ignore"):
        blas_values = np.where(space > 0, 100.0 * bline_bins / np.maximum(space, 1), np.nan)
        confluent_share = np.where(space > 0, occupancy[_CONFLUENT].sum(axis=1) / np.maximum(space, 1), 0.0)
    blas = [None if math.isnan(v) else float(v) for v in blas_values]
    return MaskAnalysis(
        position_unit=grid.unit,
        position_tolerance=POSITION_TOLERANCE_SHARE * grid.span,
        bline_count=counts,
        regions=regions,
        positions=positions,
        columns=columns,
        blas=blas,
        confluent_share=confluent_share.astype(np.float64),
        intercostal_extent=space * grid.bin_size,
    )
