"""The pixel-to-LPS transform of the volume Slicer makes from a clip file.

docs/formats.md#annotation-geometry tells it for users.

SlicerUltrasound's AnnotateUltrasound saves its lines in the LPS world coordinates of the volume
Slicer loaded, so turning them back into pixels needs that volume's IJK-to-LPS matrix. Where a
file says what Slicer makes of it, :func:`lungus.io.reader.slicer_ijk_to_lps` gives it, as Slicer's
loaders do:

- **DICOM**: AnnotateUltrasound loads its DICOMs through Slicer's DICOM module
  (``DICOMUtils.loadPatientByUID``), where ultrasound cine is read by DICOMImageSequencePlugin
  (Slicer 5.10 and 5.12, Modules/Scripted/DICOMPlugins/DICOMImageSequencePlugin.py, see
  :func:`lungus.io.dicom.slicer_dicom_ijk_to_lps`): PhysicalDeltaX/Y of the one ultrasound
  region in mm per pixel and a zero origin, so LPS x = column x spacing, y = row x spacing.
  Where that plugin finds no such region, Slicer keeps whatever spacing its ITK/GDCM reader
  found, which depends on GDCM's version and the SOP class; that is not guessed here (None).
- **NRRD** (``.seq.nrrd`` and plain ``.nrrd``): the header's space directions and space origin
  (:func:`lungus.io.seqnrrd.nrrd_ijk_to_lps`).
- **Other formats** (video, images, arrays): they carry no geometry (None); the manifest or a
  sidecar says it for them (lungus.data.labels.annotation_geometry).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Slicer's RAS and the LPS that DICOM, NRRD and AnnotateUltrasound files use differ in the
#: signs of x and y.
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class SlicerGeometry:
    """A 4x4 IJK-to-LPS matrix (I = column, J = row, K = slice) and where it came from, in words."""

    ijk_to_lps: np.ndarray
    source: str

    @property
    def spacing_mm(self) -> tuple[float, float]:
        """(row, column) mm per pixel: the lengths of the J and I columns."""
        return (float(np.linalg.norm(self.ijk_to_lps[:3, 1])), float(np.linalg.norm(self.ijk_to_lps[:3, 0])))


def ijk_to_lps_matrix(
    spacing_mm: Sequence[float] = (1.0, 1.0), origin_lps: Sequence[float] = (0.0, 0.0, 0.0)
) -> np.ndarray:
    """4x4 IJK-to-LPS of a frame with ``spacing_mm`` (row, column) and ``origin_lps``, axes aligned
    (LPS x along the columns, y down the rows: how Slicer's ultrasound loader places a frame)."""
    row, col = (float(v) for v in spacing_mm)
    if not (row > 0 and col > 0 and np.isfinite(row) and np.isfinite(col)):
        raise ValueError(f"spacing_mm must be positive, got {tuple(spacing_mm)}")
    origin = list(origin_lps) + [0.0] * (3 - len(origin_lps))
    matrix = np.eye(4)
    matrix[0, 0], matrix[1, 1] = col, row
    matrix[:3, 3] = origin[:3]
    return matrix


def ijk_to_lps_from_ras(ijk_to_ras: np.ndarray) -> np.ndarray:
    """IJK-to-LPS from a Slicer volume node's IJK-to-RAS (``GetIJKToRASMatrix``, a 4x4 array)."""
    return RAS_TO_LPS @ np.asarray(ijk_to_ras, dtype=np.float64)
