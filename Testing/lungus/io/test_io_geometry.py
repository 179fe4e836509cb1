"""The pixel-to-LPS transform Slicer gives a clip's volume, read from the file's header.

Slicer's own readers give the same matrices in Testing/bridge/test_bridge_annotation_geometry.py."""

from __future__ import annotations

import nrrd
import numpy as np
import pydicom
import pytest

from lungus.io import Clip, write_clip
from lungus.io.dicom import save_dataset
from lungus.io.geometry import ijk_to_lps_from_ras, ijk_to_lps_matrix
from lungus.io.reader import slicer_ijk_to_lps


@pytest.fixture
def frames(make_fan_frames):
    return make_fan_frames("convex", n_frames=2)[0]


def edit_dicom(path, change) -> None:
    ds = pydicom.dcmread(path)
    change(ds)
    save_dataset(ds, path)


def test_dicom_region_spacing_in_mm_column_first_and_zero_origin(tmp_path, frames, write_test_dicom):
    path = write_test_dicom(tmp_path / "scan.dcm", frames, spacing_cm=(0.03, 0.025))
    geometry = slicer_ijk_to_lps(path)
    assert geometry.ijk_to_lps == pytest.approx(np.diag([0.3, 0.25, 1.0, 1.0]))
    assert geometry.spacing_mm == pytest.approx((0.25, 0.3))
    assert "ultrasound region" in geometry.source


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda ds: ds.SequenceOfUltrasoundRegions.append(ds.SequenceOfUltrasoundRegions[0]),
                     id="two-regions"),
        pytest.param(lambda ds: setattr(ds.SequenceOfUltrasoundRegions[0], "PhysicalUnitsXDirection", 4),
                     id="seconds-across"),
        pytest.param(lambda ds: setattr(ds.SequenceOfUltrasoundRegions[0], "RegionSpatialFormat", 2),
                     id="m-mode-region"),
        pytest.param(lambda ds: setattr(ds.SequenceOfUltrasoundRegions[0], "RegionDataType", 3),
                     id="pw-doppler-region"),
        pytest.param(lambda ds: setattr(ds, "Modality", "OT"), id="not-modality-us"),
        pytest.param(lambda ds: delattr(ds, "SequenceOfUltrasoundRegions"), id="no-region"),
    ],
)
def test_dicom_without_the_one_region_slicer_uses_is_unknown(tmp_path, frames, write_test_dicom, change):
    """DICOMImageSequencePlugin takes the region's spacing only for Modality US with exactly one 2-D
    tissue or colour-flow region in cm; otherwise Slicer's reader decides, which lungus does not guess."""
    path = write_test_dicom(tmp_path / "scan.dcm", frames)
    edit_dicom(path, change)
    assert slicer_ijk_to_lps(path) is None


def test_colour_flow_region_counts_like_tissue(tmp_path, frames, write_test_dicom):
    path = write_test_dicom(tmp_path / "scan.dcm", frames, spacing_cm=(0.02, 0.02))
    edit_dicom(path, lambda ds: setattr(ds.SequenceOfUltrasoundRegions[0], "RegionDataType", 2))
    assert slicer_ijk_to_lps(path).ijk_to_lps == pytest.approx(np.diag([0.2, 0.2, 1.0, 1.0]))


def test_seq_nrrd_gives_its_space_directions(tmp_path, frames):
    path = write_clip(Clip(frames, fps=25.0, spacing_mm=(0.2, 0.3)), tmp_path / "clip.seq.nrrd")
    assert slicer_ijk_to_lps(path).ijk_to_lps == pytest.approx(ijk_to_lps_matrix((0.2, 0.3)))


def write_nrrd(path, header_fields: dict):
    data = np.zeros((8, 6, 1, 2), dtype=np.uint8)  # columns, rows, 1 slice, 2 frames
    header = {"kinds": ["domain", "domain", "domain", "list"], **header_fields}
    nrrd.write(str(path), data, header)
    return path


DIRECTIONS = np.array([[0.2, 0.01, 0.0], [0.0, 0.3, 0.0], [0.0, 0.0, 1.0], [np.nan] * 3])


def test_nrrd_directions_and_origin_in_lps(tmp_path):
    path = write_nrrd(tmp_path / "a.seq.nrrd", {"space": "left-posterior-superior",
                                                 "space directions": DIRECTIONS,
                                                 "space origin": np.array([5.0, -7.0, 2.0])})
    expected = np.eye(4)
    expected[:3, :3] = DIRECTIONS[:3].T
    expected[:3, 3] = [5.0, -7.0, 2.0]
    assert slicer_ijk_to_lps(path).ijk_to_lps == pytest.approx(expected)


def test_nrrd_in_ras_has_x_and_y_turned_over(tmp_path):
    path = write_nrrd(tmp_path / "a.seq.nrrd", {"space": "right-anterior-superior",
                                                 "space directions": DIRECTIONS,
                                                 "space origin": np.array([5.0, -7.0, 2.0])})
    lps = slicer_ijk_to_lps(path).ijk_to_lps
    assert lps[:3, 0] == pytest.approx([-0.2, -0.01, 0.0])
    assert lps[:3, 3] == pytest.approx([-5.0, 7.0, 2.0])


def test_nrrd_spacings_only_and_no_space_read_as_lps(tmp_path):
    path = write_nrrd(tmp_path / "a.seq.nrrd", {"spacings": np.array([0.2, 0.3, 1.0, np.nan])})
    assert slicer_ijk_to_lps(path).ijk_to_lps == pytest.approx(ijk_to_lps_matrix((0.3, 0.2)))


def test_formats_without_geometry_give_none(mp4_clip):
    assert slicer_ijk_to_lps(mp4_clip) is None


def test_ijk_to_lps_from_slicers_ras_negates_x_and_y():
    ras = np.diag([-0.2, -0.3, 1.0, 1.0])
    ras[:3, 3] = [1.0, 2.0, 3.0]
    expected = np.diag([0.2, 0.3, 1.0, 1.0])
    expected[:3, 3] = [-1.0, -2.0, 3.0]
    assert ijk_to_lps_from_ras(ras) == pytest.approx(expected)
