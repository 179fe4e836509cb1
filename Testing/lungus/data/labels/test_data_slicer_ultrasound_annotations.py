"""SlicerUltrasound's own AnnotateUltrasound test annotations, read back where the rater drew them.

The files (Testing/data/slicer_ultrasound, MIT, copied unchanged) annotate two 649x850 clips whose
DICOMs SlicerUltrasound does not publish. The tests write a multi-frame ultrasound DICOM of that
size whose one SequenceOfUltrasoundRegions item gives the pixel spacing the annotations imply (the
``slicer_ultrasound_clip`` fixture of Testing/conftest.py).

How the spacing is derived. The fan keys are in pixels (sector apex at row -128 / column 424 and
-157 / 420, edges near +-32 degrees, radii 227-693 and 256-720 pixels); the lines are in LPS
millimetres, LPS x = column x spacing and y = row x spacing with a zero origin, as Slicer's
DICOMImageSequencePlugin loads a DICOM with square PhysicalDeltaX = PhysicalDeltaY. A spacing s
fits when, read at s, (a) every point the rater clicked lies in the fan, between its edges and
radii, and (b) every B-line's sector lies within a pleura line's sector (AnnotateUltrasound erases
B-line overlay outside the pleura sectors: a B-line is drawn under the pleura it starts from).
Scanning s in steps of 0.0001 mm (:func:`spacings_that_fit`, computed here with the fan's own
numbers, independently of lungus): 3038953328_70622118 fits 0.2377-0.2851 mm (below, its second
pleura line ends past the fan's right edge; above, its first B-line leaves the first pleura line's
sector) and 9938886735_88815303 fits 0.2071-0.2874 mm. The DICOM is written at the middle of
both, 0.261 mm per pixel (PhysicalDeltaX = PhysicalDeltaY = 0.0261 cm). Read at one millimetre per
pixel instead (the spacing ignored), the first file's lines land about 63 degrees off the probe
axis, outside the +-32 degree fan, and its frame is refused.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from lungus.data.labels.annotation_labels import IGNORE_INDEX, annotation_mask_file, read_annotation_mask_file
from lungus.data.labels.schemes import B_LINE, PLEURA
from lungus.errors import LungUSError
from lungus.io import read_clip

DATA = Path(__file__).resolve().parents[3] / "data" / "slicer_ultrasound"
CLIPS = ("3038953328_70622118", "9938886735_88815303")
SHAPE = (649, 850)
SPACING_MM = 0.261
N_FRAMES = 2  # the slicer_ultrasound_clip fixture's DICOM (Testing/conftest.py)


def record(name: str) -> dict:
    return json.loads((DATA / f"{name}.tom.json").read_text(encoding="utf-8"))


def lines(name: str, kind: str) -> list[np.ndarray]:
    """(N, 2) LPS x, y millimetres of each line of frame 0 (the only annotated frame)."""
    frame = record(name)["frame_annotations"][0]
    assert frame["frame_number"] == 0 and frame["coordinate_space"] == "LPS"
    return [np.array(entry["line"]["points"])[:, :2] for entry in frame[kind]]


def spacings_that_fit(name: str) -> tuple[float, float]:
    """(smallest, largest) square spacing at which (a) and (b) of the module docstring hold."""
    fan = record(name)
    apex_row, apex_col = fan["center_rows_px"], fan["center_cols_px"]
    left, right = 90 - fan["angle1"], 90 - fan["angle2"]  # AnonymizeUltrasound's OpenCV degrees
    inner, outer = fan["radius1"], fan["radius2"]

    def polar(points_mm: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
        cols, rows = points_mm[:, 0] / spacing - apex_col, points_mm[:, 1] / spacing - apex_row
        return np.degrees(np.arctan2(cols, rows)), np.hypot(rows, cols)

    def fits(spacing: float) -> bool:
        for points in lines(name, "pleura_lines") + lines(name, "b_lines"):
            angle, radius = polar(points, spacing)
            if not ((angle >= left) & (angle <= right) & (radius >= inner) & (radius <= outer)).all():
                return False
        pleura = [sorted(polar(points, spacing)[0]) for points in lines(name, "pleura_lines")]
        for points in lines(name, "b_lines"):
            low, high = sorted(polar(points, spacing)[0])
            if not any(p_low <= low and high <= p_high for p_low, p_high in pleura):
                return False
        return True

    fitting = [s for s in np.arange(0.15, 0.40, 0.0001) if fits(s)]
    return float(fitting[0]), float(fitting[-1])


def pixel(point_mm: np.ndarray) -> tuple[int, int]:
    """(row, column) of an LPS point at the DICOM's spacing."""
    return round(point_mm[1] / SPACING_MM), round(point_mm[0] / SPACING_MM)


def test_the_dicoms_spacing_is_the_middle_of_what_the_lines_allow():
    ranges = [spacings_that_fit(name) for name in CLIPS]
    assert ranges[0] == pytest.approx((0.2377, 0.2851), abs=2e-4)
    assert ranges[1] == pytest.approx((0.2071, 0.2874), abs=2e-4)
    low, high = max(r[0] for r in ranges), min(r[1] for r in ranges)
    assert SPACING_MM == pytest.approx((low + high) / 2, abs=1e-3)


@pytest.mark.parametrize("name", CLIPS)
def test_masks_hold_the_raters_lines_inside_the_fan_at_the_dicoms_spacing(name, slicer_ultrasound_clip,
                                                                          tmp_path):
    clip_path = slicer_ultrasound_clip(name, SPACING_MM)
    labels = read_annotation_mask_file(annotation_mask_file(clip_path, tmp_path / "cache"))
    fan = read_clip(clip_path).fan.mask
    assert labels.shape == (N_FRAMES, *SHAPE)
    assert (labels[1] == IGNORE_INDEX).all()  # frame 1: nobody annotated it
    frame = labels[0]
    assert not np.isin(frame[~fan], (PLEURA, B_LINE)).any()
    for points in lines(name, "pleura_lines"):
        # Each pleura line is drawn where the rater put it: its middle (3-pixel-thick line).
        row, col = pixel(points.mean(axis=0))
        assert (frame[row - 1 : row + 2, col - 1 : col + 2] == PLEURA).any()
    for points in lines(name, "b_lines"):
        # The B-line sector covers the clicked points, from the pleura down.
        for point in (points.mean(axis=0), *points):
            assert frame[pixel(point)] == B_LINE
    # And nothing is labelled beyond the rays from the apex through the outermost points drawn.
    fan_keys = record(name)
    apex = np.array([fan_keys["center_rows_px"], fan_keys["center_cols_px"]])

    def angle(row_col) -> np.ndarray:
        offset = np.asarray(row_col, dtype=float) - apex[:, None]
        return np.degrees(np.arctan2(offset[1], offset[0]))

    drawn = angle(np.array([pixel(point) for points in lines(name, "pleura_lines") for point in points]).T)
    labelled = angle(np.nonzero(np.isin(frame, (PLEURA, B_LINE))))
    assert drawn.min() - 0.5 <= labelled.min() and labelled.max() <= drawn.max() + 0.5


def test_the_same_lines_read_at_one_mm_per_pixel_are_refused(slicer_ultrasound_clip, tmp_path):
    """Without the DICOM's spacing the points are read as pixels: 85.8, 41.5 mm becomes column 86, row 42,
    about 63 degrees off the probe axis of a +-32 degree fan."""
    clip_path = slicer_ultrasound_clip(CLIPS[0], spacing_mm=None)
    with pytest.raises(LungUSError) as error:
        annotation_mask_file(clip_path, tmp_path / "cache")
    message = str(error.value)
    annotation = clip_path.with_name(f"{CLIPS[0]}.tom.json")
    assert message.startswith(f"{annotation}: frame 0,") and "\n" not in message
    assert "pleura line 1 by tom lies outside the fan" in message
    assert "-63 to -62 degrees" in message and "unit spacing" in message
    assert math.isclose(float(message.split("the fan spans ")[1].split(" to ")[0]), -32, abs_tol=1)
