"""Ground truth from class masks: B-line instances and counts per frame, labels per clip.

Everything here works on an image-space mask (class ids of lungus.data.schemes), so the
same rules apply to simulator truth and to a segmenter's predicted masks.

**B-line count of a frame** (Volpicelli's semi-quantitative rule for confluence):

- every connected region of class B-line (3) counts 1;
- every connected region of class confluent B-line (4) counts
  ``max(2, round(10 * share))``, where ``share`` is the fraction of the visible
  intercostal pleura it covers: the lateral extent of the region over the lateral
  extent of pleura, B-line and confluent pixels together (the intercostal space). A
  white screen over the whole space therefore counts 10.

Lateral extent is measured in angle about the probe apex for sector fans (so a region
that widens with depth is not over-counted) and in image columns otherwise.

**Clip labels** (rules, applied to the per-frame truth of the whole clip):

- bline3 = ``confluent`` if at least CONFLUENT_FRAME_SHARE (30 %) of the frames show a
  confluent region; else ``discrete`` if at least DISCRETE_FRAME_SHARE (30 %) of the
  frames show one or more B-lines; else ``none``.
- bline2 = ``present`` if bline3 is discrete or confluent, else ``absent``.
- lus4 (after Soldati 2020):
  ``3`` if a large sub-pleural consolidation (deeper than LARGE_CONSOLIDATION_MM,
  12 mm) is present or the lung is white (median confluent share over frames at least
  WHITE_LUNG_SHARE, 0.5);
  ``2`` if bline3 is confluent or any smaller consolidation is present;
  ``1`` if bline3 is discrete;
  ``0`` otherwise (A-lines only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from lungus.data.schemes import B_LINE, BLINE3_TO_BLINE2, CONFLUENT, PLEURA
from lungus.io.clip import FanGeometry

CONFLUENT_FRAME_SHARE = 0.3
DISCRETE_FRAME_SHARE = 0.3
WHITE_LUNG_SHARE = 0.5
LARGE_CONSOLIDATION_MM = 12.0


@dataclass(frozen=True)
class BLineInstance:
    """One B-line region of a frame.

    kind: "discrete" or "confluent"; count: B-lines it stands for (1 for a discrete one);
    column: lateral position at the top of the region (image column); share: fraction
    of the intercostal space it covers; positions: ``count`` columns spread across its
    top, one per B-line it stands for (for localisation metrics).
    """

    kind: str
    count: int
    column: float
    share: float
    positions: tuple[float, ...]


@dataclass(frozen=True)
class FrameTruth:
    bline_count: int
    discrete: int
    confluent_regions: int
    confluent_share: float
    positions: tuple[float, ...] = field(default=())

    def to_dict(self) -> dict:
        data = asdict(self)
        data["positions"] = [round(p, 1) for p in self.positions]
        return data


class LateralCoordinate:
    """Lateral bin of every pixel: angle about the apex for sectors, column otherwise.

    Bins are about one image column wide at the bottom of the image.
    """

    def __init__(self, shape: tuple[int, int], fan: FanGeometry | None = None) -> None:
        height, width = shape
        if fan is not None and fan.kind == "sector" and fan.apex is not None:
            rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
            angle = np.degrees(np.arctan2(cols - fan.apex[1], rows - fan.apex[0]))
            lo, hi = fan.angles_deg if fan.angles_deg is not None else (-90.0, 90.0)
            self.bins = (
                np.clip(np.round((angle - lo) / (hi - lo) * (width - 1)), -1, width).astype(np.int32) + 1
            )
        else:
            self.bins = np.broadcast_to(np.arange(width, dtype=np.int32) + 1, (height, width))
        self.n_bins = int(self.bins.max()) + 1


def _top_columns(labels: np.ndarray, label: int, top: int) -> tuple[float, float, float]:
    """(first, last, centre) column of a region's top rows (within 3 rows of its top)."""
    rows = labels[top : top + 4]
    cols = np.nonzero(rows == label)[1]
    return float(cols.min()), float(cols.max()), float(cols.mean())


def _occupied_bins(bins: np.ndarray, where: np.ndarray, n_bins: int) -> int:
    return int(np.count_nonzero(np.bincount(bins[where], minlength=n_bins)))


def frame_instances(mask: np.ndarray, lateral: LateralCoordinate) -> list[BLineInstance]:
    """The B-line instances of one (H, W) class mask, left to right."""
    instances: list[BLineInstance] = []
    space_bins = 0
    for kind, class_id in (("discrete", B_LINE), ("confluent", CONFLUENT)):
        region = (mask == class_id).view(np.uint8)
        if not region.any():
            continue
        n, labels, stats, _ = cv2.connectedComponentsWithStats(region, connectivity=8)
        for label in range(1, n):
            first, last, centre = _top_columns(labels, label, int(stats[label, cv2.CC_STAT_TOP]))
            if kind == "discrete":
                instances.append(BLineInstance(kind, 1, centre, 0.0, (centre,)))
                continue
            if not space_bins:
                space = (mask == PLEURA) | (mask == B_LINE) | (mask == CONFLUENT)
                space_bins = _occupied_bins(lateral.bins, space, lateral.n_bins)
            share = _occupied_bins(lateral.bins, labels == label, lateral.n_bins) / max(space_bins, 1)
            count = max(2, int(round(10 * share)))
            step = (last - first) / count
            positions = tuple(first + step * (i + 0.5) for i in range(count))
            instances.append(BLineInstance(kind, count, centre, float(share), positions))
    instances.sort(key=lambda inst: inst.column)
    return instances


def frame_truth(mask: np.ndarray, lateral: LateralCoordinate) -> FrameTruth:
    instances = frame_instances(mask, lateral)
    confluent = [i for i in instances if i.kind == "confluent"]
    return FrameTruth(
        bline_count=sum(i.count for i in instances),
        discrete=sum(1 for i in instances if i.kind == "discrete"),
        confluent_regions=len(confluent),
        confluent_share=float(min(1.0, sum(i.share for i in confluent))),
        positions=tuple(p for i in instances for p in i.positions),
    )


def count_blines(mask: np.ndarray, fan: FanGeometry | None = None) -> int:
    """B-line count of one (H, W) class mask by the rule in this module's docstring."""
    return frame_truth(mask, LateralCoordinate(mask.shape, fan)).bline_count


def masks_truth(masks: np.ndarray, fan: FanGeometry | None = None) -> list[FrameTruth]:
    """Per-frame truth of a (T, H, W) mask sequence."""
    lateral = LateralCoordinate(masks.shape[1:], fan)
    return [frame_truth(mask, lateral) for mask in masks]


def clip_labels(frames: Sequence[FrameTruth], consolidation_mm: float = 0.0) -> dict[str, str]:
    """bline2, bline3 and lus4 labels of a clip by the rules in this module's docstring."""
    n = max(len(frames), 1)
    confluent_frames = sum(1 for f in frames if f.confluent_regions > 0) / n
    bline_frames = sum(1 for f in frames if f.bline_count > 0) / n
    if confluent_frames >= CONFLUENT_FRAME_SHARE:
        bline3 = "confluent"
    elif bline_frames >= DISCRETE_FRAME_SHARE:
        bline3 = "discrete"
    else:
        bline3 = "none"
    white_lung = bool(frames) and float(np.median([f.confluent_share for f in frames])) >= WHITE_LUNG_SHARE
    if consolidation_mm >= LARGE_CONSOLIDATION_MM or white_lung:
        lus4 = "3"
    elif bline3 == "confluent" or consolidation_mm > 0:
        lus4 = "2"
    elif bline3 == "discrete":
        lus4 = "1"
    else:
        lus4 = "0"
    return {"bline2": BLINE3_TO_BLINE2[bline3], "bline3": bline3, "lus4": lus4}
