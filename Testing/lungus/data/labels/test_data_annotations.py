"""AnnotateUltrasound JSON -> class masks, on fixtures written here following the module's schema.

Geometry of the fixture: a 256x256 convex fan with its apex above the image at
(row -40, column 128), edges at +-35 degrees (AnonymizeUltrasound angle1 125, angle2 55),
radii 90..300 pixels. One pleura line spans about -20..+20 degrees at radius 130; one B-line
line spans about 0..+10 degrees at radius 170. The expected sectors are computed here with
cross products (no angles), independently of the code under test.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from lungus.data.labels.annotations import (
    AnnotationMaskConfig,
    annotation_masks,
    clip_annotation_masks,
    find_annotations,
    ijk_to_lps_matrix,
    read_annotation,
)
from lungus.data.labels.blines import analyse_masks
from lungus.data.labels.fusion import fuse_masks
from lungus.data.labels.schemes import B_LINE, PLEURA
from lungus.errors import LungUSError

SHAPE = (256, 256)
APEX = (-40, 128)  # (row, column)
RADII = (90, 300)
FAN_KEYS = {
    "mask_type": "fan",
    "angle1": 125.0,
    "angle2": 55.0,
    "center_rows_px": APEX[0],
    "center_cols_px": APEX[1],
    "radius1": RADII[0],
    "radius2": RADII[1],
    "image_size_rows": SHAPE[0],
    "image_size_cols": SHAPE[1],
}


def pixel_at(angle_deg: float, radius: float) -> tuple[int, int]:
    """Whole-pixel (column, row) at an angle from straight down about the apex."""
    a = math.radians(angle_deg)
    return round(APEX[1] + radius * math.sin(a)), round(APEX[0] + radius * math.cos(a))


PLEURA_POINTS = [pixel_at(-20, 130), pixel_at(20, 130)]
BLINE_POINTS = [pixel_at(0, 170), pixel_at(10, 170)]


def lps(points, spacing=1.0, space="LPS"):
    sign = -1.0 if space == "RAS" else 1.0
    return [[sign * c * spacing, sign * r * spacing, 0.0] for c, r in points]


def line(points, rater="tom", **extra):
    return {"rater": rater, "line": {"points": points}, **extra}


def write_annotation(folder: Path, frames: list[dict], name="scan.tom.json", fan=True) -> Path:
    record = {
        "SOPInstanceUID": "1.2.826.0.1.3680043.8.498.1",
        "GrayscaleConversion": False,
        "labels": ["B-lines/present"],
        "frame_annotations": frames,
    }
    if fan:
        record.update(FAN_KEYS)
    path = folder / name
    path.write_text(json.dumps(record), encoding="utf-8")
    return path


def frame(number, pleura=(), blines=(), space="LPS", **extra):
    return {
        "frame_number": number,
        "coordinate_space": space,
        "pleura_lines": list(pleura),
        "b_lines": list(blines),
        **extra,
    }


def standard_frame(number=2, space="LPS", spacing=1.0):
    return frame(
        number, [line(lps(PLEURA_POINTS, spacing, space))], [line(lps(BLINE_POINTS, spacing, space))], space
    )


def expected_sector(p, q) -> tuple[np.ndarray, np.ndarray]:
    """Pixels between the apex rays through p and q within the fan radii, and their distance to the rays."""
    rows, cols = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]].astype(float)
    v = np.stack([cols - APEX[1], rows - APEX[0]])
    u1 = np.array([p[0] - APEX[1], p[1] - APEX[0]], float)
    u2 = np.array([q[0] - APEX[1], q[1] - APEX[0]], float)
    if u1[0] * u2[1] - u1[1] * u2[0] < 0:
        u1, u2 = u2, u1
    cross1 = u1[0] * v[1] - u1[1] * v[0]
    cross2 = v[0] * u2[1] - v[1] * u2[0]
    radius = np.hypot(v[0], v[1])
    inside = (cross1 >= 0) & (cross2 >= 0) & (radius >= RADII[0]) & (radius <= RADII[1])
    near_ray = np.minimum(np.abs(cross1) / np.hypot(*u1), np.abs(cross2) / np.hypot(*u2)) <= 1.0
    return inside, near_ray


def angle_of(point) -> float:
    return math.degrees(math.atan2(point[0] - APEX[1], point[1] - APEX[0]))


@pytest.fixture
def standard(tmp_path):
    return read_annotation(
        write_annotation(tmp_path, [standard_frame(2), frame(4, [line(lps(PLEURA_POINTS))])])
    )


def test_bline_line_becomes_the_module_overlay_sector(standard):
    masks = annotation_masks(standard, n_frames=6, config=AnnotationMaskConfig(bline_top="fan")).masks
    sector, near_ray = expected_sector(*BLINE_POINTS)
    got = masks[2] == B_LINE
    expected = sector & (masks[2] != PLEURA)  # the pleura line is painted over the sector
    wrong = got ^ expected
    assert expected.sum() > 2000
    assert not (wrong & ~near_ray).any()
    assert wrong.sum() <= 0.01 * expected.sum()


def test_pleura_percentage_is_the_known_sector_fraction(standard):
    result = annotation_masks(standard, n_frames=6)
    known = (
        100
        * (angle_of(BLINE_POINTS[1]) - angle_of(BLINE_POINTS[0]))
        / (angle_of(PLEURA_POINTS[1]) - angle_of(PLEURA_POINTS[0]))
    )
    pleura_sector, _ = expected_sector(*PLEURA_POINTS)
    bline_sector, _ = expected_sector(*BLINE_POINTS)
    pixel_ratio = 100 * (bline_sector & pleura_sector).sum() / pleura_sector.sum()
    assert result.pleura_percentage[2] == pytest.approx(pixel_ratio, abs=0.2)
    assert result.pleura_percentage[2] == pytest.approx(known, abs=0.5)


def test_blines_start_at_the_pleural_line_by_default(standard):
    masks = annotation_masks(standard, n_frames=6).masks[2]
    rows, cols = np.nonzero(masks == B_LINE)
    # The pleura chord is a horizontal line at the row of its two end points.
    assert rows.min() >= PLEURA_POINTS[0][1]
    assert rows.min() <= PLEURA_POINTS[0][1] + 2
    assert rows.max() == SHAPE[0] - 1  # down to the bottom of the fan (cut by the image)


def test_pleura_line_is_drawn_thick_within_its_sector(standard):
    masks = annotation_masks(standard, n_frames=6, config=AnnotationMaskConfig(pleura_thickness_px=5)).masks[
        2
    ]
    rows, cols = np.nonzero(masks == PLEURA)
    assert set(np.unique(rows)) == set(range(PLEURA_POINTS[0][1] - 2, PLEURA_POINTS[0][1] + 3))
    assert cols.min() >= PLEURA_POINTS[0][0] - 1 and cols.max() <= PLEURA_POINTS[1][0] + 1


def test_unannotated_frames_differ_from_annotated_without_blines(standard):
    result = annotation_masks(standard, n_frames=6)
    assert result.annotated.tolist() == [False, False, True, False, True, False]
    assert (result.masks[4] == PLEURA).any() and not (result.masks[4] == B_LINE).any()
    assert result.pleura_percentage[4] == 0.0
    assert result.pleura_percentage[0] is None and not result.masks[0].any()


def test_ras_points_and_millimetre_spacing_give_the_same_masks(tmp_path, standard):
    reference = annotation_masks(standard, n_frames=6).masks[:3]
    ras = read_annotation(write_annotation(tmp_path, [standard_frame(2, space="RAS")], name="a.tom.json"))
    assert np.array_equal(annotation_masks(ras, n_frames=3).masks, reference)
    mm = read_annotation(write_annotation(tmp_path, [standard_frame(2, spacing=0.4)], name="b.tom.json"))
    got = annotation_masks(mm, n_frames=3, ijk_to_lps=ijk_to_lps_matrix((0.4, 0.4))).masks
    assert np.array_equal(got, reference)


def test_older_export_keyed_by_frame_with_ras_point_lists(tmp_path, standard):
    old = {
        "0": {"pleura_lines": [lps(PLEURA_POINTS, space="RAS")], "b_lines": [lps(BLINE_POINTS, space="RAS")]}
    }
    path = tmp_path / "scan.sarah.json"
    path.write_text(json.dumps({**FAN_KEYS, "frame_annotations": old}), encoding="utf-8")
    annotation = read_annotation(path)
    assert annotation.raters == ("sarah",)
    got = annotation_masks(annotation, n_frames=1).masks[0]
    assert np.array_equal(got, annotation_masks(standard, n_frames=6).masks[2])


def test_invalidated_lines_are_skipped(tmp_path):
    bad = line(lps(BLINE_POINTS), validation={"status": "invalidated", "adjudicator": "ann"})
    annotation = read_annotation(write_annotation(tmp_path, [frame(0, [line(lps(PLEURA_POINTS))], [bad])]))
    assert not (annotation_masks(annotation).masks == B_LINE).any()


def test_rectangle_fan_gives_a_column_band(tmp_path):
    frames = [frame(0, [line(lps([(40, 60), (200, 60)]))], [line(lps([(100, 90), (120, 92)]))])]
    path = write_annotation(tmp_path, frames, fan=False)
    record = json.loads(path.read_text())
    record.update(
        {
            "mask_type": "rectangle",
            "rectangle_left": 20,
            "rectangle_right": 230,
            "rectangle_top": 30,
            "rectangle_bottom": 250,
        }
    )
    path.write_text(json.dumps(record))
    result = annotation_masks(read_annotation(path), SHAPE)
    rows, cols = np.nonzero(result.masks[0] == B_LINE)
    assert (cols.min(), cols.max()) == (100, 120)
    assert rows.min() >= 60 and rows.max() == 249
    assert result.pleura_percentage[0] == pytest.approx(100 * 21 / 161)


def test_find_annotations_beside_a_clip(tmp_path):
    (tmp_path / "scan.dcm").write_bytes(b"")
    write_annotation(tmp_path, [standard_frame()], name="scan.tom.json")
    write_annotation(tmp_path, [standard_frame()], name="scan.Sarah.json")
    (tmp_path / "scan.json").write_text(json.dumps(FAN_KEYS))  # AnonymizeUltrasound fan only
    write_annotation(tmp_path, [standard_frame()], name="other.tom.json")
    assert find_annotations(tmp_path / "scan.dcm") == {
        "tom": tmp_path / "scan.tom.json",
        "sarah": tmp_path / "scan.Sarah.json",
    }
    write_annotation(tmp_path, [standard_frame()], name="scan.json")
    assert find_annotations(tmp_path / "scan.dcm")[""] == tmp_path / "scan.json"


def test_merged_file_needs_a_rater(tmp_path):
    frames = [
        frame(
            0,
            [line(lps(PLEURA_POINTS), "tom"), line(lps(PLEURA_POINTS), "sarah")],
            [line(lps(BLINE_POINTS), "sarah")],
        )
    ]
    annotation = read_annotation(write_annotation(tmp_path, frames, name="scan.json"))
    with pytest.raises(LungUSError, match="2 raters"):
        annotation_masks(annotation)
    assert not (annotation_masks(annotation, rater="tom").masks == B_LINE).any()
    assert (annotation_masks(annotation, rater="Sarah").masks == B_LINE).any()


def test_points_outside_the_image_ask_for_the_transform(tmp_path):
    far = frame(0, [line(lps([(c * 10, r * 10) for c, r in PLEURA_POINTS]))])
    path = write_annotation(tmp_path, [far])
    with pytest.raises(LungUSError, match="ijk_to_lps") as error:
        annotation_masks(read_annotation(path))
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


def test_unreadable_and_inconsistent_files_are_one_line_errors(tmp_path):
    junk = tmp_path / "junk.tom.json"
    junk.write_text("{not json")
    with pytest.raises(LungUSError, match="not a readable JSON"):
        read_annotation(junk)
    junk.write_text(json.dumps({"SOPInstanceUID": "1"}))
    with pytest.raises(LungUSError, match="no frame_annotations"):
        read_annotation(junk)
    annotation = read_annotation(write_annotation(tmp_path, [standard_frame(7)]))
    with pytest.raises(LungUSError, match="frame 7 but the clip has 5 frames"):
        annotation_masks(annotation, n_frames=5)
    with pytest.raises(LungUSError, match="256x256 image but the clip is 128x128"):
        annotation_masks(annotation, (128, 128))


def test_raters_beside_a_clip_fuse_and_score_like_the_module(tmp_path):
    # Two raters draw the same pleura; tom marks one B-line, sarah the same one slightly
    # wider on frame 2 and nothing on frame 3 (which only tom annotated, with no B-line).
    (tmp_path / "scan.dcm").write_bytes(b"")
    wider = [pixel_at(-1, 170), pixel_at(11, 170)]
    write_annotation(
        tmp_path, [standard_frame(2), frame(3, [line(lps(PLEURA_POINTS))])], name="scan.tom.json"
    )
    sarah = frame(2, [line(lps(PLEURA_POINTS), "sarah")], [line(lps(wider), "sarah")])
    write_annotation(tmp_path, [sarah], name="scan.sarah.json")
    per_rater = clip_annotation_masks(tmp_path / "scan.dcm", SHAPE, n_frames=4)
    assert sorted(per_rater) == ["sarah", "tom"]
    assert per_rater["sarah"].annotated.tolist() == [False, False, True, False]

    raters = list(per_rater.values())
    fused = fuse_masks([r.masks for r in raters], "majority", annotated=[r.annotated for r in raters])
    assert fused.n_raters.tolist() == [0, 0, 2, 1]
    assert np.array_equal(
        fused.labels[2] == B_LINE, (raters[0].masks[2] == B_LINE) & (raters[1].masks[2] == B_LINE)
    )

    # Our B-line artefact score of the drawn masks matches the module's pleuraPercentage.
    tom = per_rater["tom"]
    analysis = analyse_masks(tom.masks, tom.fan)
    assert analysis.blas[2] == pytest.approx(tom.pleura_percentage[2], abs=1.0)
    assert analysis.bline_count.tolist() == [0, 0, 1, 0]
    assert analysis.blas[3] == 0.0 and analysis.blas[0] is None


def test_a_huge_frame_number_without_the_clips_length_is_refused_before_allocating(tmp_path):
    """With no n_frames the masks run to the last annotated frame: frame 10**9 would ask for terabytes."""
    path = write_annotation(tmp_path, [standard_frame(number=10**9)])
    with pytest.raises(LungUSError, match=r"masks for 1000000001 frames of .* would exceed the .*-voxel limit"):
        annotation_masks(read_annotation(path))


def test_a_frame_whose_line_lies_outside_the_fan_is_refused_naming_the_frame(tmp_path):
    """A line wholly beyond the fan's edge draws nothing: its frame would train as "no B-lines"."""
    outside = [pixel_at(-50, 150), pixel_at(-42, 150)]  # the fan spans -35..+35 degrees
    frames = [standard_frame(0), frame(3, [line(lps(PLEURA_POINTS))], [line(lps(outside))])]
    path = write_annotation(tmp_path, frames)
    with pytest.raises(LungUSError) as error:
        annotation_masks(read_annotation(path), n_frames=4)
    message = str(error.value)
    assert message.startswith(f"{path}: frame 3, points read with unit spacing") and "\n" not in message
    assert "B-line 1 by tom lies outside the fan" in message and "-50 to -42 degrees" in message


def test_a_line_clicked_just_past_the_fans_edge_is_drawn(tmp_path):
    """Within OUTSIDE_FAN_TOLERANCE (5 % of the fan's 70 degrees) of the edge a line is a rater's click, not a
    wrong spacing: it is read, and draws what the module draws (nothing outside the fan)."""
    past_edge = [pixel_at(36, 200), pixel_at(37, 200)]
    path = write_annotation(tmp_path, [frame(0, [line(lps(PLEURA_POINTS))], [line(lps(past_edge))])])
    result = annotation_masks(read_annotation(path), n_frames=1)
    assert result.annotated[0] and not (result.masks[0] == B_LINE).any()
