"""The pixel-to-LPS transform a clip's AnnotateUltrasound points are read with.

docs/formats.md#annotation-geometry has the whole story.

AnnotateUltrasound saves points in millimetres of the volume Slicer made from the DICOM it loaded.
The transform that turns them back into pixels comes from, in this order:

1. the clip file itself, read as Slicer reads it (:func:`lungus.io.reader.slicer_ijk_to_lps`: a
   DICOM's ultrasound region, an NRRD's space directions and origin);
2. the manifest's :data:`ANNOTATION_SPACING` column, for a clip that does not carry it (an mp4
   export of the DICOM the rater annotated);
3. the :data:`ANNOTATION_SPACING` key of the clip's JSON sidecar (``<clip stem>.json``, the
   AnonymizeUltrasound file lungus already reads the fan from);
4. otherwise unit spacing and zero origin (what Slicer gives an image without spacing).

The manifest and the sidecar give the DICOM's pixel spacing: one number (square pixels) or row and
column mm per pixel (``0.26`` or ``0.26 0.25``; in JSON a number or ``[row, column]``), with the
zero origin and axes of Slicer's ultrasound loader. Every source that is given must agree with the
others (to 0.1 %): a rater's points are in one volume, and two different answers mean one is wrong.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from lungus.data.labels.annotation_spacing import ANNOTATION_SPACING, annotation_spacing, spacing_problem
from lungus.errors import LungUSError, error_detail
from lungus.io.fan import fan_sidecar_path
from lungus.io.geometry import SlicerGeometry, ijk_to_lps_matrix
from lungus.io.reader import slicer_ijk_to_lps

_AGREEMENT = 1e-3


def parse_annotation_spacing(
    value: object, where: str, path: str | os.PathLike | None
) -> tuple[float, float]:
    """:func:`annotation_spacing`, or a LungUSError naming ``where`` (``line 3: column
    annotation_spacing_mm``) and ``path``."""
    spacing = annotation_spacing(value)
    if spacing is None:
        raise LungUSError(f"{where}: {spacing_problem(value)}", path)
    return spacing


def _sidecar_spacing(clip_path: Path) -> tuple[Path, tuple[float, float]] | None:
    sidecar = fan_sidecar_path(clip_path)
    if sidecar is None:
        return None
    try:
        record = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise LungUSError(f"not a readable JSON file ({error_detail(error)})", sidecar) from error
    if not isinstance(record, dict) or ANNOTATION_SPACING not in record:
        return None
    return sidecar, parse_annotation_spacing(record[ANNOTATION_SPACING], f"key {ANNOTATION_SPACING}", sidecar)


def _describe(spacing: tuple[float, float]) -> str:
    return f"{spacing[0]:.4g} x {spacing[1]:.4g} mm per pixel"


def annotation_geometry(
    clip_path: str | os.PathLike, manifest_spacing: tuple[float, float] | None = None
) -> SlicerGeometry | None:
    """The transform the clip's annotation points are read with (see the module docstring); None:
    unit spacing and zero origin. ``manifest_spacing``: the row's :data:`ANNOTATION_SPACING`
    (:func:`parse_annotation_spacing`). LungUSError when the sources disagree."""
    clip_path = Path(clip_path)
    given: list[SlicerGeometry] = []
    own = slicer_ijk_to_lps(clip_path)
    if own is not None:
        given.append(own)
    if manifest_spacing is not None:
        given.append(SlicerGeometry(ijk_to_lps_matrix(manifest_spacing),
                                    f"the manifest's {ANNOTATION_SPACING} ({_describe(manifest_spacing)})"))
    sidecar = _sidecar_spacing(clip_path)
    if sidecar is not None:
        given.append(SlicerGeometry(ijk_to_lps_matrix(sidecar[1]),
                                    f"{sidecar[0].name}'s {ANNOTATION_SPACING} ({_describe(sidecar[1])})"))
    if not given:
        return None
    first = given[0]
    for other in given[1:]:
        pairs = zip(first.spacing_mm, other.spacing_mm)
        if not all(math.isclose(a, b, rel_tol=_AGREEMENT) for a, b in pairs):
            raise LungUSError(
                f"{other.source} differs from {first.source}; the rater's points are in one volume, so "
                "remove the one that is wrong",
                clip_path,
            )
    return first
