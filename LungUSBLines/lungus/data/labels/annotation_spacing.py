"""The pixel spacing AnnotateUltrasound points are read with, as a manifest column or sidecar key gives
it (lungus.data.labels.annotation_geometry uses it). Engine-package free: `lungus validate` and the
Slicer modules check the column without reading a clip."""

from __future__ import annotations

import math

#: The manifest column and sidecar key that give the annotated DICOM's pixel spacing in mm.
ANNOTATION_SPACING = "annotation_spacing_mm"


def annotation_spacing(value: object) -> tuple[float, float] | None:
    """(row, column) mm per pixel from ``0.26``, ``"0.26 0.25"`` or ``[0.26, 0.25]``; None if it is none."""
    if isinstance(value, str):
        parts: list[object] = value.replace(";", " ").replace("x", " ").split()
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        parts = [value]
    numbers = []
    for part in parts:
        try:
            number = float(part) if not isinstance(part, bool) else math.nan
        except (TypeError, ValueError):
            number = math.nan
        numbers.append(number)
    if len(numbers) not in (1, 2) or not all(math.isfinite(n) and n > 0 for n in numbers):
        return None
    return (numbers[0], numbers[-1])


def spacing_problem(value: object) -> str:
    """What is wrong with a value :func:`annotation_spacing` refuses."""
    return f"{str(value)[:40]!r} is not a pixel spacing in mm (one positive number, or row and column)"
