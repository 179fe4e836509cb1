"""SlicerUltrasound AnnotateUltrasound annotations (``<clip>.<rater>.json``) as class masks.

Schema followed: SlicerUltrasound/SlicerUltrasound, ``AnnotateUltrasound/AnnotateUltrasound.py``
at commit 062ba5558f4e2ec51b74b25bda6027a445f80c6b (``saveAnnotations``, ``convert_ras_to_lps``,
``updateCurrentFrame``, ``createSectorMaskBetweenPoints``, ``createFanMask``,
``updateOverlayVolume``, ``calculatePleuraPercentage``), its JSON schema
``AnnotateUltrasound/annotations.schema.json`` (atinm/SlicerUltrasound fork, commit
64d7afb802fc510f60581357eef48c6dc2559db0) and ``scripts/annotation_merging_workflow.md``.

**The file.** One JSON object per clip and rater, saved beside the clip as
``<clip without its suffix>.<rater>.json`` (``<clip>.json`` is also read by the module)::

    {"SOPInstanceUID": "...",                          # required by the schema
     "mask_type": "fan", "angle1": 121.0, "angle2": 59.0,     # the AnonymizeUltrasound fan:
     "center_rows_px": -40, "center_cols_px": 128,            # OpenCV degrees (0 = +column,
     "radius1": 90, "radius2": 290,                           # 90 = straight down), apex in
     "image_size_rows": 256, "image_size_cols": 256,          # pixels, radii in pixels
     "labels": ["B-lines/present"],                           # clip-level labels
     "frame_annotations": [
        {"frame_number": 3, "coordinate_space": "LPS",
         "pleura_lines": [{"rater": "tom", "line": {"points": [[x, y, z], [x, y, z]]}}],
         "b_lines":      [{"rater": "tom", "line": {"points": [[x, y, z], [x, y, z]]}}],
         "pleura_percentage": 25.0}]}

Points are markup control points in the LPS space of the volume Slicer showed (the module
negates x and y of its RAS points before saving; ``coordinate_space`` says which, RAS when
absent). Only frames a rater drew on are saved, so a frame missing from the list is *not
annotated*, while a frame listed with pleura lines and no B-lines is *annotated, no B-lines*.
Older exports keyed ``frame_annotations`` by frame number with bare point lists, in RAS; they
are read too. Lines an adjudicator marked ``invalidated`` are skipped.

**Masks, as the module draws its overlay.** Every segment between two consecutive control
points of a line (rounded to whole pixels, as the module does) becomes a fan sector: the
region between the rays from the fan's apex through the two points, from the fan's inner to
its outer radius. Pleura sectors are the module's blue channel, B-line sectors its green
channel, and B-line pixels outside every pleura sector are erased. Then:

- ``pleuraPercentage`` = B-line sector pixels / pleura sector pixels x 100 (the module's
  overlay ratio; ``None`` here where a frame has no pleura line, which the module shows as 0);
- the B-line class (3) is the B-line sectors, from the pleural line down to the bottom of the
  fan (``bline_top="pleura"``, the default, as B-lines are drawn in the simulator's truth) or
  from the top of the fan as the overlay shows it (``bline_top="fan"``), within the fan;
- the pleural-line class (1) is each pleura line drawn ``pleura_thickness_px`` thick, clipped
  to its sector, painted over the B-lines.

The module has one B-line class, so wide lines over confluent B-lines stay class 3; it has
no A-lines or rib shadows, so those stay background (train with those classes ignored).
For a rectangle (linear probe) the module slices rows and columns between the two points,
which is empty for a vertical or horizontal line; here a segment covers the columns between
its points over the height of the fan instead, the linear analogue of the sector.

**Coordinates.** Pixel (column i, row j) = inverse(``ijk_to_lps``) x LPS point, where
``ijk_to_lps`` is the transform of the volume the rater saw: for a DICOM, its ultrasound region's
spacing with a zero origin, as Slicer loads it (lungus.io.geometry; the clip's own, the manifest's
or the sidecar's: lungus.data.labels.annotation_geometry, docs/formats.md#annotation-geometry).
The default here is unit spacing and zero origin (LPS x = column, y = row). Points far outside the
image, and a line wholly outside the fan (it would draw nothing, and its frame would read as "no
B-lines"), raise an error naming the file, the frame and the transform used.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from lungus.data.labels.schemes import B_LINE, PLEURA
from lungus.errors import LungUSError, error_detail
from lungus.io.clip import FanGeometry
from lungus.io.fan import read_fan_sidecar
from lungus.io.formats import DEFAULT_MAX_VOXELS
from lungus.io.geometry import (  # noqa: F401 - the matrix helpers are part of this module's API
    SlicerGeometry,
    ijk_to_lps_from_ras,
    ijk_to_lps_matrix,
)

#: Points may lie this far outside the image (as a share of its size) before the transform
#: is judged wrong: raters click a little past the edge of the fan.
OUTSIDE_TOLERANCE = 0.1
#: A line may lie this far beyond the fan's edge along the probe (as a share of the fan's extent
#: there: its angle, or its width) before it is refused: a line wholly beyond that draws nothing
#: in the fan, the sign of a wrong pixel spacing rather than of a click past the edge.
OUTSIDE_FAN_TOLERANCE = 0.05
#: How the points are read when nobody says otherwise.
UNIT_GEOMETRY = "unit spacing and zero origin (1 mm = 1 pixel)"
BLINE_TOPS = ("pleura", "fan")
_LINE_KEYS = {"pleura": "pleura_lines", "bline": "b_lines"}
_RATER_FILE = re.compile(r"^(?P<rater>[^.]+)\.json$", re.IGNORECASE)


@dataclass(frozen=True)
class AnnotationMaskConfig:
    """How annotation lines become class masks.

    pleura_thickness_px: drawn width of a pleura line (odd values centre it on the line);
    bline_top: "pleura" (B-line class from the pleural line down) or "fan" (from the top of
    the fan, exactly the module's overlay).
    """

    pleura_thickness_px: int = 3
    bline_top: str = "pleura"

    def __post_init__(self) -> None:
        if (
            not isinstance(self.pleura_thickness_px, (int, np.integer))
            or not 1 <= self.pleura_thickness_px <= 50
        ):
            raise ValueError(
                f"pleura_thickness_px must be a whole number from 1 to 50, got {self.pleura_thickness_px!r}"
            )
        if self.bline_top not in BLINE_TOPS:
            raise ValueError(f"bline_top must be one of {', '.join(BLINE_TOPS)}, got {self.bline_top!r}")


@dataclass(frozen=True)
class AnnotatedLine:
    """One drawn line: ``points_lps`` is (N, 3), N >= 2."""

    rater: str
    points_lps: np.ndarray


@dataclass
class FrameAnnotation:
    frame: int
    pleura: list[AnnotatedLine] = field(default_factory=list)
    blines: list[AnnotatedLine] = field(default_factory=list)
    saved_pleura_percentage: float | None = None  # as the module saved it (percent)


@dataclass
class Annotation:
    """The contents of one AnnotateUltrasound JSON file."""

    path: Path | None
    frames: dict[int, FrameAnnotation]
    labels: list[str]
    fan_config: dict
    image_size: tuple[int, int] | None

    @property
    def raters(self) -> tuple[str, ...]:
        names = {line.rater for f in self.frames.values() for line in (*f.pleura, *f.blines)}
        return tuple(sorted(names))

    @property
    def annotated_frames(self) -> list[int]:
        return sorted(self.frames)


@dataclass
class AnnotationMasks:
    """Per-frame class masks from an annotation.

    masks: (T, H, W) uint8 class ids; annotated: (T,) bool, False where the rater drew
    nothing (unknown, not "no B-lines"); pleura_percentage: the module's overlay ratio per
    frame in percent, None where not annotated or no pleura was drawn; fan: the geometry the
    sectors were drawn with.
    """

    masks: np.ndarray
    annotated: np.ndarray
    pleura_percentage: list[float | None]
    fan: FanGeometry | None


# --------------------------------------------------------------------------- reading


def _rater_from_name(path: Path) -> str:
    """``clip.tom.json`` -> ``tom``; ``clip.json`` -> ``""``."""
    parts = path.name.split(".")
    return parts[-2].strip().lower() if len(parts) >= 3 else ""


def _points(raw: object, space: str, where: str, path: Path) -> np.ndarray:
    try:
        points = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise LungUSError(f"{where}: line points must be lists of 3 numbers", path) from None
    if points.ndim != 2 or points.shape[1] not in (2, 3) or not np.isfinite(points).all():
        raise LungUSError(
            f"{where}: line points must be a list of [x, y, z] numbers, got shape {points.shape}", path
        )
    if points.shape[1] == 2:
        points = np.column_stack([points, np.zeros(len(points))])
    if space == "RAS":
        points = points * np.array([-1.0, -1.0, 1.0])
    return points


def _invalidated(entry: dict) -> bool:
    for holder in (entry, entry.get("line") if isinstance(entry.get("line"), dict) else {}):
        validation = holder.get("validation")
        if isinstance(validation, dict) and str(validation.get("status", "")).lower() == "invalidated":
            return True
    return False


def _lines(entries: object, space: str, default_rater: str, where: str, path: Path) -> list[AnnotatedLine]:
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise LungUSError(f"{where} must be a list of lines", path)
    lines = []
    for index, entry in enumerate(entries):
        here = f"{where}[{index}]"
        if isinstance(entry, dict):
            if _invalidated(entry):
                continue
            line = entry.get("line")
            raw = line.get("points") if isinstance(line, dict) else None
            if raw is None:
                raise LungUSError(f"{here} has no line.points", path)
            rater = str(entry.get("rater") or default_rater).strip().lower()
        else:  # older exports: a bare list of points
            raw, rater = entry, default_rater
        points = _points(raw, space, here, path)
        if len(points) >= 2:  # the module only saves lines with two or more points
            lines.append(AnnotatedLine(rater, points))
    return lines


def _frame_number(value: object, where: str, path: Path) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer past float range
        number = float("nan")
    if not (math.isfinite(number) and number.is_integer() and number >= 0):
        raise LungUSError(f"{where}: frame_number must be a whole number >= 0, got {value!r}", path)
    return int(number)


def read_annotation(path: str | os.PathLike, rater: str | None = None) -> Annotation:
    """Read one AnnotateUltrasound JSON file.

    ``rater`` names the lines that carry no rater of their own (older exports); by default it
    comes from the file name, ``<clip>.<rater>.json``.
    """
    path = Path(path)
    if path.exists() and not path.is_file():  # a FIFO would block the read forever
        raise LungUSError("not a regular file; expected an AnnotateUltrasound JSON file", path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LungUSError("annotation file not found", path) from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        # RecursionError: JSON nested thousands deep.
        raise LungUSError(f"not a readable JSON file ({error_detail(error)})", path) from error
    if not isinstance(record, dict) or "frame_annotations" not in record:
        raise LungUSError("not an AnnotateUltrasound file: it has no frame_annotations", path)
    default_rater = (rater if rater is not None else _rater_from_name(path)).strip().lower()
    raw_frames = record["frame_annotations"]
    if isinstance(raw_frames, dict):  # older exports: {"<frame>": {...}}, points in RAS
        items = [
            ({**value, "frame_number": key}, "RAS")
            for key, value in raw_frames.items()
            if isinstance(value, dict)
        ]
    elif isinstance(raw_frames, list):
        items = [(value, None) for value in raw_frames]
    else:
        raise LungUSError("frame_annotations must be a list (or an object keyed by frame number)", path)

    frames: dict[int, FrameAnnotation] = {}
    for index, (raw, space) in enumerate(items):
        where = f"frame_annotations[{index}]"
        if not isinstance(raw, dict):
            raise LungUSError(f"{where} must be an object", path)
        number = _frame_number(raw.get("frame_number"), where, path)
        space = space or str(raw.get("coordinate_space") or "RAS").upper()
        if space not in ("RAS", "LPS"):
            raise LungUSError(f"{where}: coordinate_space must be LPS or RAS, got {space!r}", path)
        frame = frames.setdefault(number, FrameAnnotation(number))
        frame.pleura += _lines(raw.get("pleura_lines"), space, default_rater, f"{where}.pleura_lines", path)
        frame.blines += _lines(raw.get("b_lines"), space, default_rater, f"{where}.b_lines", path)
        saved = raw.get("pleura_percentage")
        if isinstance(saved, (int, float)) and math.isfinite(saved):
            frame.saved_pleura_percentage = float(saved)

    size = (record.get("image_size_rows"), record.get("image_size_cols"))
    image_size = None
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 2**31 for v in size):
        image_size = (int(size[0]), int(size[1]))
    labels = record.get("labels") or []
    if not isinstance(labels, list):
        raise LungUSError(f"labels must be a list of names, got {str(labels)[:40]!r}", path)
    fan_keys = (
        "mask_type",
        "angle1",
        "angle2",
        "center_rows_px",
        "center_cols_px",
        "radius1",
        "radius2",
        "rectangle_left",
        "rectangle_right",
        "rectangle_top",
        "rectangle_bottom",
        "image_size_rows",
        "image_size_cols",
    )
    fan_config = {key: record[key] for key in fan_keys if key in record}
    return Annotation(path, frames, [str(label) for label in labels], fan_config, image_size)


def find_annotations(clip_path: str | os.PathLike) -> dict[str, Path]:
    """AnnotateUltrasound files beside a clip: ``{rater: path}``.

    ``scan.dcm`` finds ``scan.<rater>.json``; a multi-suffix clip such as ``scan.seq.nrrd``
    also finds ``scan.<rater>.json``. A plain ``scan.json`` counts (rater ``""``) only when it
    holds ``frame_annotations`` (AnonymizeUltrasound writes fan-only JSON of that name).
    """
    clip = Path(clip_path)
    bases = [clip.name[: -len(clip.suffix)] if clip.suffix else clip.name]
    if "." in clip.name:
        bases.append(clip.name.split(".")[0])
    found: dict[str, Path] = {}
    folder = clip.parent
    if not folder.is_dir():
        return found
    for entry in sorted(folder.iterdir()):
        if not entry.is_file() or entry == clip:
            continue
        for base in dict.fromkeys(bases):
            if entry.name.lower() == f"{base}.json".lower():
                if _has_frame_annotations(entry):
                    found.setdefault("", entry)
            elif entry.name.startswith(base + "."):
                match = _RATER_FILE.match(entry.name[len(base) + 1 :])
                # "scan.seq.json" beside "scan.seq.nrrd" is that clip's own JSON, not a rater "seq".
                if match and f"{base}.{match['rater']}".lower() not in {b.lower() for b in bases}:
                    found.setdefault(match["rater"].strip().lower(), entry)
    return found


def _has_frame_annotations(path: Path) -> bool:
    try:
        return "frame_annotations" in json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, TypeError, RecursionError):
        return False


# --------------------------------------------------------------------------- coordinates


def _to_pixels(points_lps: np.ndarray, lps_to_ijk: np.ndarray) -> np.ndarray:
    """(N, 2) whole-pixel (column, row) of LPS points, rounded as the module rounds them."""
    homogeneous = np.column_stack([points_lps, np.ones(len(points_lps))])
    ijk = homogeneous @ lps_to_ijk.T
    return np.rint(ijk[:, :2])


# --------------------------------------------------------------------------- drawing


class _FanDrawing:
    """Per-pixel polar coordinates of a fan, and the sectors and bands of line segments."""

    def __init__(self, shape: tuple[int, int], fan: FanGeometry | None) -> None:
        self.shape = shape
        self.fan_mask = fan.mask if fan is not None else np.ones(shape, dtype=bool)
        self.sector = (
            fan is not None and fan.kind == "sector" and fan.apex is not None and fan.radii is not None
        )
        rows = np.arange(shape[0], dtype=np.float64)[:, None]
        cols = np.arange(shape[1], dtype=np.float64)[None, :]
        if self.sector:
            self.apex = (float(fan.apex[0]), float(fan.apex[1]))
            self.inner, self.outer = sorted(float(r) for r in fan.radii)
            d_row, d_col = rows - self.apex[0], cols - self.apex[1]
            self.angle = np.degrees(np.arctan2(d_col, d_row))  # 0 straight down, + to the right
            self.radius = np.hypot(d_row, d_col)
            self.in_depth = (self.radius >= self.inner) & (self.radius <= self.outer)
        else:
            fan_rows = np.flatnonzero(self.fan_mask.any(axis=1))
            top, bottom = (fan_rows[0], fan_rows[-1]) if fan_rows.size else (0, shape[0] - 1)
            self.cols = np.broadcast_to(cols, shape)
            self.in_depth = np.broadcast_to((rows >= top) & (rows <= bottom), shape)

    def _pixel_angle(self, pixel: np.ndarray) -> float:
        return math.degrees(math.atan2(pixel[0] - self.apex[1], pixel[1] - self.apex[0]))

    def along(self, pixel: np.ndarray) -> float:
        """Where a (column, row) pixel lies along the probe: its angle about the apex, or its column."""
        return self._pixel_angle(pixel) if self.sector else float(pixel[0])

    @functools.cached_property
    def fan_extent(self) -> tuple[float, float] | None:
        """(first, last) position of the fan's pixels along the probe; None for an empty fan. Computed on
        first use, once annotation_masks has narrowed ``fan_mask`` to the clip's fan."""
        if not self.fan_mask.any():
            return None
        along = self.angle[self.fan_mask] if self.sector else np.flatnonzero(self.fan_mask.any(axis=0))
        return float(along.min()), float(along.max())

    def describe(self, first: float, last: float) -> str:
        if self.sector:
            return f"{first:.0f} to {last:.0f} degrees from the probe axis"
        return f"columns {first:.0f} to {last:.0f}"

    def segment_region(self, p: np.ndarray, q: np.ndarray) -> np.ndarray:
        """The sector (or column band) of one segment between pixels p and q (column, row)."""
        if self.sector:
            lo, hi = sorted((self._pixel_angle(p), self._pixel_angle(q)))
            return (self.angle >= lo) & (self.angle <= hi) & self.in_depth
        lo, hi = sorted((p[0], q[0]))
        return (self.cols >= lo) & (self.cols <= hi) & self.in_depth

    def beyond_line(self, segments: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """Pixels whose ray (from the apex, or straight down) crosses a segment before reaching them."""
        beyond = np.zeros(self.shape, dtype=bool)
        rows = np.arange(self.shape[0], dtype=np.float64)[:, None]
        cols = np.arange(self.shape[1], dtype=np.float64)[None, :]
        for p, q in segments:
            # Intersect the pixel's ray origin + t * direction with p + s * (q - p); the pixel
            # itself is t = 1 (sector) or t = its row (straight down from row 0).
            e_col, e_row = q[0] - p[0], q[1] - p[1]
            if self.sector:
                d_col, d_row = cols - self.apex[1], rows - self.apex[0]
                w_col, w_row = p[0] - self.apex[1], p[1] - self.apex[0]
                pixel_t = 1.0
            else:
                d_col, d_row = np.zeros_like(cols), np.ones_like(rows)
                w_col, w_row = p[0] - cols, p[1] - np.zeros_like(rows)
                pixel_t = rows
            det = d_row * e_col - d_col * e_row
            with np.errstate(divide="ignore", invalid="ignore"):
                t = (w_row * e_col - w_col * e_row) / det
                s = (w_row * d_col - w_col * d_row) / det
            hit = (det != 0) & (s >= -1e-9) & (s <= 1 + 1e-9) & (t > 0) & (t <= pixel_t)
            beyond |= hit
        return beyond


def _segments(
    lines: list[AnnotatedLine], lps_to_ijk: np.ndarray
) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    result = []
    for line in lines:
        pixels = _to_pixels(line.points_lps, lps_to_ijk)
        result.append([(pixels[i], pixels[i + 1]) for i in range(len(pixels) - 1)])
    return result


def _check_inside(
    segments: list[list[tuple[np.ndarray, np.ndarray]]],
    shape: tuple[int, int],
    where: str,
    path: Path | None,
) -> None:
    points = np.array([point for line in segments for segment in line for point in segment]).reshape(-1, 2)
    if points.size == 0:
        return
    height, width = shape
    margin_c, margin_r = OUTSIDE_TOLERANCE * width, OUTSIDE_TOLERANCE * height
    outside = (
        (points[:, 0] < -margin_c)
        | (points[:, 0] > width - 1 + margin_c)
        | (points[:, 1] < -margin_r)
        | (points[:, 1] > height - 1 + margin_r)
    )
    if outside.any():
        col, row = points[np.argmax(outside)]
        raise LungUSError(
            f"{where}: points fall outside the {height}x{width} image (pixel column {col:.0f}, "
            f"row {row:.0f}); give the annotated volume's spacing and origin (ijk_to_lps; "
            "docs/formats.md#annotation-geometry)",
            path,
        )


def _check_in_fan(
    lines: list[tuple[str, AnnotatedLine, list[tuple[np.ndarray, np.ndarray]]]],
    drawing: _FanDrawing,
    where: str,
    path: Path | None,
) -> None:
    """Refuse a line that lies wholly beyond the fan along the probe: it would draw nothing, and
    its frame would train as "no B-lines" (or "no pleura") where the rater drew them."""
    extent = drawing.fan_extent
    if extent is None:
        return
    first, last = extent
    margin = OUTSIDE_FAN_TOLERANCE * (last - first)
    for name, line, segments in lines:
        points = [segments[0][0]] + [q for _, q in segments]
        along = [drawing.along(point) for point in points]
        if min(along) > last + margin or max(along) < first - margin:
            col, row = points[0]
            raise LungUSError(
                f"{where}: {name} by {line.rater or 'the rater'} lies outside the fan (pixel column "
                f"{col:.0f}, row {row:.0f}, at {drawing.describe(min(along), max(along))}; the fan spans "
                f"{drawing.describe(first, last)}), so that spacing is likely wrong: give the annotated "
                "DICOM's (the manifest's annotation_spacing_mm; docs/formats.md#annotation-geometry)",
                path,
            )


def _thick_polylines(
    lines: list[list[tuple[np.ndarray, np.ndarray]]], shape: tuple[int, int], thickness: int
) -> np.ndarray:
    """Pixels within (thickness - 1) / 2 of the lines: exactly ``thickness`` pixels across.

    (OpenCV's thick lines come out a pixel or two wider than asked.)"""
    centre = np.full(shape, 255, dtype=np.uint8)
    for line in lines:
        polyline = np.stack([line[0][0]] + [q for _, q in line]).astype(np.int32)
        cv2.polylines(centre, [polyline], False, 0, thickness=1, lineType=cv2.LINE_8)
    if thickness == 1:
        return centre == 0
    distance = cv2.distanceTransform(centre, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return distance <= (thickness - 1) / 2


def _frame_masks(
    frame: FrameAnnotation,
    rater: str | None,
    drawing: _FanDrawing,
    lps_to_ijk: np.ndarray,
    config: AnnotationMaskConfig,
    geometry: str,
    path: Path | None,
) -> tuple[np.ndarray, float | None]:
    pleura = [line for line in frame.pleura if rater is None or line.rater == rater]
    blines = [line for line in frame.blines if rater is None or line.rater == rater]
    pleura_segments, bline_segments = _segments(pleura, lps_to_ijk), _segments(blines, lps_to_ijk)
    where = f"frame {frame.frame}, points read with {geometry}"
    _check_inside(pleura_segments + bline_segments, drawing.shape, where, path)
    named = [(f"pleura line {i + 1}", *pair) for i, pair in enumerate(zip(pleura, pleura_segments))]
    named += [(f"B-line {i + 1}", *pair) for i, pair in enumerate(zip(blines, bline_segments))]
    _check_in_fan(named, drawing, where, path)

    pleura_sectors = np.zeros(drawing.shape, dtype=bool)
    for line in pleura_segments:
        for p, q in line:
            pleura_sectors |= drawing.segment_region(p, q)
    bline_sectors = np.zeros(drawing.shape, dtype=bool)
    for line in bline_segments:
        for p, q in line:
            bline_sectors |= drawing.segment_region(p, q)
    bline_sectors &= pleura_sectors  # the module erases B-lines where there is no pleura
    pleura_pixels = int(np.count_nonzero(pleura_sectors))
    percentage = 100.0 * int(np.count_nonzero(bline_sectors)) / pleura_pixels if pleura_pixels else None

    mask = np.zeros(drawing.shape, dtype=np.uint8)
    bline_class = bline_sectors & drawing.fan_mask
    if config.bline_top == "pleura":
        bline_class &= drawing.beyond_line([segment for line in pleura_segments for segment in line])
    mask[bline_class] = B_LINE
    if pleura_segments:
        mask[
            _thick_polylines(pleura_segments, drawing.shape, config.pleura_thickness_px)
            & pleura_sectors
            & drawing.fan_mask
        ] = PLEURA
    return mask, percentage


def _matrix_and_source(ijk_to_lps: np.ndarray | SlicerGeometry | None) -> tuple[np.ndarray, str]:
    """The 4x4 IJK-to-LPS and how it was found, in words, for the error messages."""
    if ijk_to_lps is None:
        return np.eye(4), UNIT_GEOMETRY
    if isinstance(ijk_to_lps, SlicerGeometry):
        matrix, source = np.asarray(ijk_to_lps.ijk_to_lps, dtype=np.float64), ijk_to_lps.source
    else:
        matrix = np.asarray(ijk_to_lps, dtype=np.float64)
        if matrix.shape != (4, 4):
            raise ValueError(f"ijk_to_lps must be a 4x4 matrix, got shape {matrix.shape}")
        row, column = SlicerGeometry(matrix, "").spacing_mm
        source = f"the given IJK-to-LPS ({row:.4g} x {column:.4g} mm per pixel)"
    return matrix, source


def annotation_fan(annotation: Annotation, shape: tuple[int, int]) -> FanGeometry | None:
    """The fan the annotation's AnonymizeUltrasound keys describe (None if it has none)."""
    if not annotation.fan_config or annotation.path is None:
        return None
    return read_fan_sidecar(annotation.path, shape)


def annotation_masks(
    annotation: Annotation,
    shape: tuple[int, int] | None = None,
    fan: FanGeometry | None = None,
    *,
    n_frames: int | None = None,
    ijk_to_lps: np.ndarray | SlicerGeometry | None = None,
    rater: str | None = None,
    config: AnnotationMaskConfig | None = None,
) -> AnnotationMasks:
    """Class masks (T, H, W) of an annotation, drawn as AnnotateUltrasound draws its overlay.

    shape: (H, W) of the clip's frames (default: the annotation's image size);
    fan: the clip's fan, used where the annotation has no fan keys (else the annotation's
    own fan draws the sectors); n_frames: T (default: last annotated frame + 1);
    ijk_to_lps: the pixel-to-LPS transform of the volume the rater saw: a 4x4 matrix or a
    SlicerGeometry (lungus.io.reader.slicer_ijk_to_lps; default: unit spacing, zero origin);
    rater: use only this rater's lines (needed when a file holds several raters).
    """
    config = config or AnnotationMaskConfig()
    path = annotation.path
    if shape is None:
        if annotation.image_size is None:
            raise LungUSError("the annotation has no image_size_rows/cols; give the clip's frame shape", path)
        shape = annotation.image_size
    shape = (int(shape[0]), int(shape[1]))
    if annotation.image_size is not None and annotation.image_size != shape:
        raise LungUSError(
            f"annotation is for a {annotation.image_size[0]}x{annotation.image_size[1]} image "
            f"but the clip is {shape[0]}x{shape[1]}",
            path,
        )
    raters = annotation.raters
    if rater is not None:
        rater = rater.strip().lower()
        if raters and rater not in raters:
            raise LungUSError(
                f"no lines by rater {rater!r}; the file has {', '.join(raters) or 'none'}", path
            )
    elif len(raters) > 1:
        raise LungUSError(
            f"holds lines by {len(raters)} raters ({', '.join(raters)}); choose one with rater= "
            "or fuse their masks (lungus.data.labels.fusion)",
            path,
        )
    last = max(annotation.frames, default=-1)
    if n_frames is None:
        n_frames = last + 1
    if last >= n_frames:
        raise LungUSError(f"annotation for frame {last} but the clip has {n_frames} frames", path)
    if n_frames * shape[0] * shape[1] > DEFAULT_MAX_VOXELS:  # a frame_number of 10**9 would ask for that many masks
        raise LungUSError(
            f"masks for {n_frames} frames of {shape[0]}x{shape[1]} would exceed the {DEFAULT_MAX_VOXELS:,}-voxel "
            "limit clips have; check the frame_number values or give the clip's n_frames",
            path,
        )

    drawing_fan = annotation_fan(annotation, shape) or fan
    if fan is not None and fan.mask.shape != shape:
        raise ValueError(f"fan mask shape {fan.mask.shape} differs from the frame shape {shape}")
    drawing = _FanDrawing(shape, drawing_fan)
    if fan is not None:
        drawing.fan_mask = drawing.fan_mask & fan.mask
    matrix, geometry = _matrix_and_source(ijk_to_lps)
    lps_to_ijk = np.linalg.inv(matrix)

    masks = np.zeros((n_frames, *shape), dtype=np.uint8)
    annotated = np.zeros(n_frames, dtype=bool)
    percentages: list[float | None] = [None] * n_frames
    for number, frame in annotation.frames.items():
        if (
            rater is not None
            and len(raters) > 1
            and not any(line.rater == rater for line in (*frame.pleura, *frame.blines))
        ):
            continue  # in a merged file, a frame only other raters drew on
        annotated[number] = True
        masks[number], percentages[number] = _frame_masks(frame, rater, drawing, lps_to_ijk, config, geometry,
                                                          path)
    return AnnotationMasks(masks, annotated, percentages, drawing_fan)


def clip_annotation_masks(
    clip_path: str | os.PathLike,
    shape: tuple[int, int],
    n_frames: int,
    fan: FanGeometry | None = None,
    *,
    ijk_to_lps: np.ndarray | SlicerGeometry | None = None,
    config: AnnotationMaskConfig | None = None,
) -> dict[str, AnnotationMasks]:
    """Every rater's masks for a clip, from the AnnotateUltrasound files beside it: ``{rater: masks}``.

    A merged file holding several raters' lines gives one entry per rater. Fuse them with
    ``lungus.data.labels.fusion.fuse_masks([m.masks ...], annotated=[m.annotated ...])``.
    """
    result: dict[str, AnnotationMasks] = {}
    for file_rater, path in find_annotations(clip_path).items():
        annotation = read_annotation(path)
        for rater in annotation.raters or (file_rater,):
            if rater in result:
                raise LungUSError(f"rater {rater!r} has lines in two files beside the clip", path)
            result[rater] = annotation_masks(
                annotation,
                shape,
                fan,
                n_frames=n_frames,
                ijk_to_lps=ijk_to_lps,
                rater=rater if annotation.raters else None,
                config=config,
            )
    return result
