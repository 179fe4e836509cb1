"""lungus.io.geometry gives the IJK-to-LPS that Slicer's own volume nodes and readers give."""

from __future__ import annotations

import nrrd
import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")

from lungus.io.geometry import ijk_to_lps_from_ras  # noqa: E402
from lungus.io.reader import slicer_ijk_to_lps  # noqa: E402
from LungUSBLinesLib.scene import new_headless_scene  # noqa: E402


def ijk_to_ras_of(volume) -> np.ndarray:
    import vtk

    matrix = vtk.vtkMatrix4x4()
    volume.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(i, j) for j in range(4)] for i in range(4)])


def test_dicom_geometry_is_what_dicom_image_sequence_plugin_makes(tmp_path, make_fan_frames,
                                                                   write_test_dicom):
    """DICOMImageSequencePlugin.addSequenceFromImageData's calls on the frame volume, replayed on
    Slicer's vtkMRMLScalarVolumeNode with the spacingMmPerPixel examineFiles reads."""
    import vtk

    frames = make_fan_frames("convex", n_frames=2)[0]
    path = write_test_dicom(tmp_path / "scan.dcm", frames, spacing_cm=(0.03, 0.025))
    volume = slicer.vtkMRMLScalarVolumeNode()
    ijk_to_ras = vtk.vtkMatrix4x4()
    ijk_to_ras.SetElement(0, 0, -1.0)
    ijk_to_ras.SetElement(1, 1, -1.0)
    volume.SetIJKToRASMatrix(ijk_to_ras)
    volume.SetSpacing(0.03 * 10.0, 0.025 * 10.0, 1.0)  # [PhysicalDeltaX * 10, PhysicalDeltaY * 10]
    assert slicer_ijk_to_lps(path).ijk_to_lps == pytest.approx(ijk_to_lps_from_ras(ijk_to_ras_of(volume)))


DIRECTIONS = np.array([[0.2, 0.01, 0.0], [0.0, 0.3, 0.0], [0.0, 0.0, 1.0], [np.nan] * 3])


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"space": "left-posterior-superior", "space directions": DIRECTIONS,
                      "space origin": np.array([5.0, -7.0, 2.0])}, id="lps"),
        pytest.param({"space": "right-anterior-superior", "space directions": DIRECTIONS,
                      "space origin": np.array([5.0, -7.0, 2.0])}, id="ras"),
        pytest.param({"space dimension": 3, "space directions": DIRECTIONS}, id="no-space"),
        pytest.param({"spacings": np.array([0.2, 0.3, 1.0, np.nan])}, id="spacings-only"),
    ],
)
def test_nrrd_geometry_is_what_slicers_sequence_reader_makes(tmp_path, fields):
    path = tmp_path / "clip.seq.nrrd"
    header = {"kinds": ["domain", "domain", "domain", "list"], "DataNodeClassName": "vtkMRMLScalarVolumeNode",
              **fields}
    nrrd.write(str(path), np.zeros((8, 6, 1, 2), dtype=np.uint8), header)
    headless = new_headless_scene(tmp_path / "scene-work")
    with headless:
        sequence = headless.scene.AddNewNodeByClass("vtkMRMLSequenceNode")
        reader = slicer.vtkMRMLVolumeSequenceStorageNode()
        headless.scene.AddNode(reader)
        reader.SetFileName(str(path))
        assert reader.ReadData(sequence)
        slicers = ijk_to_lps_from_ras(ijk_to_ras_of(sequence.GetNthDataNode(0)))
    assert slicer_ijk_to_lps(path).ijk_to_lps == pytest.approx(slicers)
