"""The B-line rules for class masks: what a frame counts, and which labels a clip gets.

One definition for every mask (class ids of lungus.data.labels.schemes): the simulator's truth, masks
drawn from annotations, a segmenter's predictions. The regions are found by
:func:`lungus.data.labels.blines.clip_instances`; this module holds the rules applied to them.

**B-line count of a frame** (Volpicelli's semi-quantitative rule for confluence):

- every connected (8-neighbour) region of class B-line (3) counts 1;
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
from dataclasses import dataclass, field

import numpy as np

from lungus.data.labels.schemes import BLINE3_TO_BLINE2
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


def discrete_instance(column: float) -> BLineInstance:
    """A discrete B-line region whose top centres on ``column``: it counts 1."""
    return BLineInstance("discrete", 1, column, 0.0, (column,))


def confluent_instance(first: float, last: float, column: float, share: float) -> BLineInstance:
    """A confluent region over columns ``first``..``last`` of its top covering ``share`` of the
    intercostal space: it counts ``max(2, round(10 * share))`` B-lines, spread evenly across its top."""
    count = max(2, int(round(10 * share)))
    step = (last - first) / count
    positions = tuple(first + step * (i + 0.5) for i in range(count))
    return BLineInstance("confluent", count, column, float(share), positions)


def frame_truth(instances: Sequence[BLineInstance]) -> FrameTruth:
    """The truth of one frame from its B-line instances (left to right)."""
    confluent = [i for i in instances if i.kind == "confluent"]
    return FrameTruth(
        bline_count=sum(i.count for i in instances),
        discrete=sum(1 for i in instances if i.kind == "discrete"),
        confluent_regions=len(confluent),
        confluent_share=float(min(1.0, sum(i.share for i in confluent))),
        positions=tuple(p for i in instances for p in i.positions),
    )


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
