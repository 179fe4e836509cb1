"""A review folder's corrected masks as SlicerUltrasound AnnotateUltrasound files (docs/review.md#annotateultrasound-export).

One JSON file per clip, ``<clip name without its suffix>.<reviewer>.json`` (the reviewer who
saved the clip's latest masks), in the schema :mod:`lungus.data.labels.annotations` reads and
documents. Lines come from the mask regions, in the coordinates along the probe the module
draws with: the angle about the fan's apex on sector fans, the column on linear ones.

- **B-lines**: each connected region of B-line or confluent B-line pixels (the module has one
  B-line class) becomes one line between the region's two extremes along the probe (at each
  extreme its top-most pixel), so the module's sector between them covers the region.
- **Pleura**: each connected region of pleural-line pixels becomes one polyline: its two extremes
  along the probe and, between them, the mean pixel of every stretch of about
  :data:`PLEURA_POINT_SPACING_PX` pixels, so the drawn line follows the pleura and the B-lines
  start below it.
- **Frames**: every reviewed frame (not all 255) is listed, a frame without B-lines with no
  ``b_lines``; frames nobody reviewed are not listed, which the module and lungus read as
  "not annotated". ``pleura_percentage`` is what the module's overlay would show.

As the module draws them, B-lines are kept only under a pleural line, reach from the pleura to the
bottom of the fan, and A-lines and rib shadows are not annotations; so reading a file back gives
the corrected B-line regions approximately, not pixel for pixel (the measured overlap is in
docs/review.md#annotateultrasound-export). Points are LPS millimetres of the volume Slicer makes from
the clip (a DICOM's ultrasound region spacing, an NRRD's directions and origin; else the sidecar's
annotation_spacing_mm, else one mm per pixel: lungus.data.labels.annotation_geometry), as
AnnotateUltrasound saves them, so the module and ``lungus train --label-source annotations`` read them
where they were drawn; pass ``ijk_to_lps`` for another volume. The fan keys come from the clip's fan
(lungus.io.fan), the apex and radii in whole pixels as the module's schema has them.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import cv2
import numpy as np

from lungus.atomic import atomic_write_text
from lungus.data.labels.annotation_geometry import annotation_geometry
from lungus.data.labels.annotation_labels import labelled_frames
from lungus.data.labels.annotations import (
    AnnotatedLine,
    Annotation,
    FrameAnnotation,
    annotation_masks,
)
from lungus.data.labels.label_images import read_label_masks
from lungus.data.labels.schemes import B_LINE, CONFLUENT, PLEURA
from lungus.errors import LungUSError
from lungus.io.clip import FanGeometry
from lungus.io.fan import fan_sidecar_record
from lungus.review.store import MaskSave, ReviewFolder

#: Default output folder inside the review folder.
ANNOTATIONS_FOLDER = "annotations"
#: About how far apart the points of an exported pleural line are, along the pleura.
PLEURA_POINT_SPACING_PX = 8.0


class ProbeAxes:
    """Each pixel's position along the probe (angle about the apex in degrees, or column) and its
    depth (distance from the apex, or row), as the module's sectors and column bands use them."""

    def __init__(self, fan: FanGeometry) -> None:
        height, width = fan.mask.shape
        rows = np.arange(height, dtype=np.float64)[:, None]
        cols = np.arange(width, dtype=np.float64)[None, :]
        self.sector = fan.kind == "sector" and fan.apex is not None
        if self.sector:
            d_row, d_col = rows - fan.apex[0], cols - fan.apex[1]
            self.along = np.degrees(np.arctan2(d_col, d_row))
            self.depth = np.hypot(d_row, d_col)
        else:
            self.along = np.broadcast_to(cols, (height, width)).astype(np.float64)
            self.depth = np.broadcast_to(rows, (height, width)).astype(np.float64)

    def arc_length(self, along: np.ndarray, depth: np.ndarray) -> float:
        """Roughly how many pixels a region spans along the probe."""
        extent = float(along.max() - along.min())
        return math.radians(extent) * float(depth.mean()) if self.sector else extent


def _regions(pixels: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(rows, cols) of each 8-connected region of a boolean image."""
    count, labels = cv2.connectedComponents(pixels.astype(np.uint8), connectivity=8)
    return [tuple(np.nonzero(labels == label)) for label in range(1, count)]


def _extremes(rows: np.ndarray, cols: np.ndarray, axes: ProbeAxes) -> list[list[float]]:
    """The region's two extremes along the probe, each its top-most pixel there, as (column, row)."""
    along, depth = axes.along[rows, cols], axes.depth[rows, cols]
    first = np.lexsort((depth, along))[0]
    last = np.lexsort((depth, -along))[0]
    return [[float(cols[first]), float(rows[first])], [float(cols[last]), float(rows[last])]]


def _pleura_polyline(rows: np.ndarray, cols: np.ndarray, axes: ProbeAxes) -> list[list[float]]:
    along, depth = axes.along[rows, cols], axes.depth[rows, cols]
    start, end = _extremes(rows, cols, axes)
    n_stretches = round(axes.arc_length(along, depth) / PLEURA_POINT_SPACING_PX)
    inner = []
    if n_stretches >= 2:
        stretch = np.digitize(along, np.linspace(along.min(), along.max(), n_stretches + 1)[1:-1])
        for index in range(n_stretches):
            chosen = stretch == index
            if chosen.any():
                inner.append([float(cols[chosen].mean()), float(rows[chosen].mean())])
    return [start, *inner, end]


def frame_lines(mask: np.ndarray, axes: ProbeAxes) -> tuple[list[list[list[float]]], list[list[list[float]]]]:
    """(pleura polylines, B-lines) of one reviewed frame's class mask, as (column, row) points."""
    pleura = [_pleura_polyline(rows, cols, axes) for rows, cols in _regions(mask == PLEURA)]
    blines = [_extremes(rows, cols, axes) for rows, cols in _regions((mask == B_LINE) | (mask == CONFLUENT))]
    return pleura, blines


def _to_lps(points: list[list[float]], ijk_to_lps: np.ndarray) -> np.ndarray:
    ijk = np.column_stack([np.asarray(points, dtype=np.float64), np.zeros(len(points)), np.ones(len(points))])
    return (ijk @ ijk_to_lps.T)[:, :3]


def annotation_record(save: MaskSave, ijk_to_lps: np.ndarray | None = None) -> dict:
    """The AnnotateUltrasound JSON object of one clip's corrected masks. ``ijk_to_lps``: the volume the
    points are for; by default the one Slicer makes from the clip (or its sidecar's annotation_spacing_mm,
    lungus.data.labels.annotation_geometry), which is what AnnotateUltrasound and lungus read them with."""
    from lungus.io import read_clip

    # identifiers: a DICOM clip's SOPInstanceUID, by which AnnotateUltrasound keys its files (read
    # with the frames, not in a second decode; other formats have none).
    clip = read_clip(save.clip, identifiers=True)
    masks = read_label_masks(save.path, n_frames=clip.n_frames, shape=clip.frames.shape[1:3])
    fan = clip.fan or FanGeometry(np.ones(clip.frames.shape[1:3], dtype=bool), "full")
    if ijk_to_lps is None:
        geometry = annotation_geometry(save.clip)
        matrix = np.eye(4) if geometry is None else geometry.ijk_to_lps
    else:
        matrix = np.asarray(ijk_to_lps, dtype=np.float64)
    axes = ProbeAxes(fan)
    frames: dict[int, FrameAnnotation] = {}
    for t in np.flatnonzero(labelled_frames(masks)):
        pleura, blines = frame_lines(masks[t], axes)
        frames[int(t)] = FrameAnnotation(
            int(t),
            pleura=[AnnotatedLine(save.reviewer, _to_lps(line, matrix)) for line in pleura],
            blines=[AnnotatedLine(save.reviewer, _to_lps(line, matrix)) for line in blines],
        )
    # What the module's overlay would show, drawn by lungus's reading of the same lines.
    shown = annotation_masks(Annotation(None, frames, [], {}, None), clip.frames.shape[1:3], fan,
                             n_frames=clip.n_frames, ijk_to_lps=matrix)

    def entries(lines: list[AnnotatedLine]) -> list[dict]:
        return [{"rater": line.rater, "line": {"points": np.round(line.points_lps, 3).tolist()}} for line in lines]

    frame_annotations = []
    for t, frame in sorted(frames.items()):
        entry = {"frame_number": t, "coordinate_space": "LPS", "pleura_lines": entries(frame.pleura)}
        if frame.blines:
            entry["b_lines"] = entries(frame.blines)
        if shown.pleura_percentage[t] is not None:
            entry["pleura_percentage"] = round(float(shown.pleura_percentage[t]), 3)
        frame_annotations.append(entry)
    uid = str(clip.meta.get("identifiers", {}).get("SOPInstanceUID", ""))
    return {"SOPInstanceUID": uid, **_schema_fan_keys(fan_sidecar_record(fan)), "labels": [],
            "frame_annotations": frame_annotations}


def _schema_fan_keys(record: dict) -> dict:
    """The fan keys as AnnotateUltrasound's schema types them (annotations.schema.json): the apex and the
    radii are whole pixels, as AnonymizeUltrasound rounds them (``createFanMask``)."""
    whole = ("center_rows_px", "center_cols_px", "radius1", "radius2")
    return {key: round(value) if key in whole else value for key, value in record.items()}


def annotation_file_name(clip: str | os.PathLike, reviewer: str) -> str:
    """``<clip name without its suffix>.<reviewer>.json`` (``scan.seq.nrrd`` -> ``scan.tom.json``),
    the name lungus.data.labels.annotations.find_annotations looks for beside the clip."""
    name = Path(clip).name
    base = name[: -len(".seq.nrrd")] if name.lower().endswith(".seq.nrrd") else Path(name).stem
    return f"{base}.{reviewer}.json"


def export_annotate_ultrasound(
    review_folder: str | os.PathLike | ReviewFolder,
    out_folder: str | os.PathLike | None = None,
    *,
    ijk_to_lps: np.ndarray | None = None,
) -> list[Path]:
    """Write every clip's latest corrected masks as an AnnotateUltrasound file into ``out_folder``
    (default: ``<review folder>/annotations``; the clips' own folder puts them where
    AnnotateUltrasound and ``--label-source annotations`` find them). A file of the same name is
    replaced (atomically). Returns the files written, in the order the clips were first saved."""
    reviews = review_folder if isinstance(review_folder, ReviewFolder) else ReviewFolder(review_folder)
    out = reviews.folder / ANNOTATIONS_FOLDER if out_folder is None else Path(out_folder)
    saves = reviews.corrected_masks()
    names: dict[str, str] = {}
    for save in saves:
        name = annotation_file_name(save.clip, save.reviewer)
        if name.lower() in names:
            raise LungUSError(
                f"clips {names[name.lower()]} and {save.clip} would both be exported as {name}; export into the "
                "clips' own folders instead",
                out,
            )
        names[name.lower()] = save.clip
    written = []
    for save in saves:
        record = annotation_record(save, ijk_to_lps)
        written.append(atomic_write_text(out / annotation_file_name(save.clip, save.reviewer),
                                         json.dumps(record, indent=1) + "\n"))
    return written
