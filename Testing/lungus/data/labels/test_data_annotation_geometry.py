"""The pixel-to-LPS transform annotation points are read with: the clip's, the manifest's, the sidecar's."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lungus.data.labels.annotation_geometry import annotation_geometry, parse_annotation_spacing
from lungus.errors import LungUSError
from lungus.io.geometry import ijk_to_lps_matrix


def test_a_dicom_gives_its_own_ultrasound_region(tmp_path, make_fan_frames, write_test_dicom):
    frames = make_fan_frames("convex", n_frames=2)[0]
    clip = write_test_dicom(tmp_path / "scan.dcm", frames, spacing_cm=(0.03, 0.025))
    geometry = annotation_geometry(clip)
    assert geometry.ijk_to_lps == pytest.approx(ijk_to_lps_matrix((0.25, 0.3)))
    assert "ultrasound region" in geometry.source


def test_an_mp4_takes_the_manifests_spacing(mp4_clip):
    geometry = annotation_geometry(mp4_clip, (0.26, 0.25))
    assert geometry.ijk_to_lps == pytest.approx(ijk_to_lps_matrix((0.26, 0.25)))
    assert "manifest's annotation_spacing_mm" in geometry.source


def test_an_mp4_takes_its_sidecars_spacing(mp4_clip):
    mp4_clip.with_suffix(".json").write_text(json.dumps({"annotation_spacing_mm": 0.26}))
    geometry = annotation_geometry(mp4_clip)
    assert geometry.ijk_to_lps == pytest.approx(ijk_to_lps_matrix((0.26, 0.26)))
    assert geometry.source.startswith("convex.json's annotation_spacing_mm")


def test_a_clip_that_says_nothing_is_read_at_unit_spacing(mp4_clip):
    assert annotation_geometry(mp4_clip) is None


def test_sources_that_disagree_are_refused(tmp_path, make_fan_frames, write_test_dicom):
    frames = make_fan_frames("convex", n_frames=2)[0]
    clip = write_test_dicom(tmp_path / "scan.dcm", frames, spacing_cm=(0.03, 0.03))
    assert annotation_geometry(clip, (0.3, 0.3)).ijk_to_lps == pytest.approx(np.diag([0.3, 0.3, 1.0, 1.0]))
    expected = r"manifest's annotation_spacing_mm \(0.2 x 0.2 mm per pixel\) differs from the DICOM's"
    with pytest.raises(LungUSError, match=expected) as error:
        annotation_geometry(clip, (0.2, 0.2))
    assert str(error.value).startswith(str(clip))


@pytest.mark.parametrize(("value", "expected"), [("0.26", (0.26, 0.26)), ("0.26 0.25", (0.26, 0.25)),
                                                 ("0.26x0.25", (0.26, 0.25)), (0.3, (0.3, 0.3)),
                                                 ([0.26, 0.25], (0.26, 0.25))])
def test_spacing_is_one_number_or_row_and_column(value, expected):
    assert parse_annotation_spacing(value, "here", None) == pytest.approx(expected)


@pytest.mark.parametrize("value", ["", "abc", "0", "-0.2", "0.1 0.2 0.3", "nan", True, None, [0.2, "x"]])
def test_a_spacing_that_is_not_one_is_a_one_line_error_naming_where(value, tmp_path):
    expected = r"^.*manifest.csv: line 3: column annotation_spacing_mm: .* is not a pixel spacing in mm"
    with pytest.raises(LungUSError, match=expected):
        parse_annotation_spacing(value, "line 3: column annotation_spacing_mm", tmp_path / "manifest.csv")
