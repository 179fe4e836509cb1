"""NRRD clips through pynrrd: Slicer volume sequences (``.seq.nrrd``) and plain frame stacks.

A ``.seq.nrrd`` is written the way Slicer's own vtkMRMLVolumeSequenceStorageNode writes
one (Slicer 5.x, Libs/MRML/Core/vtkMRMLVolumeSequenceStorageNode.cxx and
Docs/developer_guide/modules/sequences.md): sizes ``W H 1 T`` (``3 W H 1 T`` for colour),
kinds ``domain domain domain list`` (``RGB-color ...`` first for colour), the list axis
labelled with the index name and unit, and the key/value pairs ``DataNodeClassName``,
``axis 3 index type`` and ``axis 3 index values``. Space is LPS with positive
directions, which Slicer shows with numpy row 0 at the top.

A plain ``.nrrd`` is a 3-D volume whose third axis is the frames, which Slicer opens as
an ordinary volume; its frame rate rides along in a ``lungus_fps`` key.
"""

from __future__ import annotations

import math
import os
import re
import stat
import urllib.parse
from pathlib import Path

import numpy as np

from lungus.atomic import atomic_path
from lungus.errors import LungUSError, error_detail, os_problem
from lungus.io.clip import Clip
from lungus.io.formats import check_voxels
from lungus.io.geometry import RAS_TO_LPS, SlicerGeometry
from lungus.io.pixels import FrameAccumulator, to_uint8

_COMPONENT_KINDS = {
    "rgb-color",
    "rgba-color",
    "hsv-color",
    "xyz-color",
    "3-color",
    "4-color",
    "vector",
    "covariant-vector",
    "normal",
    "3-vector",
    "4-vector",
    "scalar",
}
_FRAME_KINDS = {"list", "time"}
_INDEX_VALUES = re.compile(r"^axis (\d+) index values$")
_SPACE_UNIT_TO_MM = {
    "": 1.0,
    "mm": 1.0,
    "millimeter": 1.0,
    "cm": 10.0,
    "m": 1000.0,
    "um": 1e-3,
    "micron": 1e-3,
}
_TIME_UNIT_TO_S = {"s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0, "ms": 1e-3, "msec": 1e-3, "us": 1e-6}

SEQUENCE_INDEX_NAME = "time"
SEQUENCE_INDEX_UNIT = "s"


#: More axes than any clip needs (component, 3 space axes, frames) with room to spare.
_MAX_DIMENSION = 16


def read_nrrd_header(path: Path) -> dict:
    import nrrd

    try:
        header = nrrd.read_header(str(path))
    except Exception as error:  # noqa: BLE001 - pynrrd raises NRRDError, ValueError, ... on junk
        raise LungUSError(f"not a readable NRRD header ({error_detail(error)})", path) from error
    _check_header(header, path)
    return header


def _check_header(header: dict, path: Path) -> None:
    """Refuse, before any data is read, a header whose fields disagree or point where reading
    would hang: a missing or inconsistent ``dimension``/``sizes``/``kinds``, a detached data
    file that is not a regular file (a FIFO blocks forever), or a ``line skip``/``byte skip``
    beyond the data file's size (pynrrd would read empty lines forever)."""
    for field in ("dimension", "sizes"):
        if field not in header:
            raise LungUSError(f"the NRRD header has no {field!r} field", path)
    dimension = header["dimension"]
    if not 1 <= dimension <= _MAX_DIMENSION:
        raise LungUSError(f"NRRD dimension {dimension} is not between 1 and {_MAX_DIMENSION}", path)
    sizes = list(np.atleast_1d(header["sizes"]))
    if len(sizes) != dimension:
        raise LungUSError(f"the NRRD header lists {len(sizes)} sizes for dimension {dimension}", path)
    if any(size < 1 for size in sizes):
        raise LungUSError(f"NRRD sizes {' '.join(map(str, sizes))} include an empty axis", path)
    for field in ("kinds", "labels", "units"):
        values = header.get(field)
        if values is not None and len(values) != dimension:
            raise LungUSError(f"the NRRD header lists {len(values)} {field} for dimension {dimension}", path)
    data_path = path
    data_name = header.get("datafile", header.get("data file"))
    if data_name is not None:
        data_path = Path(data_name) if os.path.isabs(data_name) else path.parent / data_name
    try:
        data_stat = os.stat(data_path)
    except OSError as error:
        raise LungUSError(f"NRRD data file {data_path.name!r}: {os_problem(error)}", path) from error
    if not stat.S_ISREG(data_stat.st_mode):
        raise LungUSError(
            f"NRRD data file {data_path.name!r} is not a regular file (a FIFO, socket or device)", path
        )
    for field in ("line skip", "lineskip", "byte skip", "byteskip"):
        skip = header.get(field)
        if skip is not None and skip > data_stat.st_size:
            raise LungUSError(
                f"NRRD {field} {skip} is beyond the end of the data file ({data_stat.st_size} bytes)", path
            )


def _axes(header: dict, path: Path) -> tuple[int | None, int | None, list[int]]:
    """(component axis, frame axis, spatial axes in i, j, k order) in NRRD axis numbers."""
    dimension = int(header["dimension"])
    kinds = [str(kind).lower() for kind in (header.get("kinds") or ["domain"] * dimension)]
    component = next((axis for axis, kind in enumerate(kinds) if kind in _COMPONENT_KINDS), None)
    frame = next(
        (axis for axis, kind in enumerate(kinds) if kind in _FRAME_KINDS and axis != component), None
    )
    spatial = [axis for axis in range(dimension) if axis not in (component, frame)]
    if not 1 <= len(spatial) <= 3:
        raise LungUSError(f"NRRD with {dimension} axes (kinds {' '.join(kinds)}) is not a 2-D clip", path)
    return component, frame, spatial


def read_nrrd(path: Path, max_voxels: int) -> Clip:
    import nrrd

    header = read_nrrd_header(path)
    sizes = [int(size) for size in np.atleast_1d(header["sizes"])]
    component, frame_axis, spatial = _axes(header, path)
    if len(spatial) == 1:
        raise LungUSError("NRRD holds 1-D data, not images", path)
    i_axis, j_axis = spatial[0], spatial[1]
    k_axis = spatial[2] if len(spatial) == 3 else None
    if k_axis is not None and sizes[k_axis] > 1:
        if frame_axis is not None:
            raise LungUSError(
                f"NRRD holds a sequence of 3-D volumes ({sizes[k_axis]} slices each), not a 2-D clip", path
            )
        frame_axis, k_axis = k_axis, None  # a plain stack: the third axis is the frames
    n_frames = sizes[frame_axis] if frame_axis is not None else 1
    height, width = sizes[j_axis], sizes[i_axis]
    check_voxels(path, n_frames, height, width, max_voxels)
    if component is not None and sizes[component] not in (3, 4):
        raise LungUSError(f"NRRD pixels have {sizes[component]} components; expected grey, RGB or RGBA", path)

    try:
        data, header = nrrd.read(str(path), index_order="F")
    except MemoryError as error:
        raise LungUSError("not enough memory to read the NRRD data", path) from error
    except Exception as error:  # noqa: BLE001
        raise LungUSError(f"truncated or corrupt NRRD data ({error_detail(error)})", path) from error

    order = [axis for axis in (frame_axis, j_axis, i_axis, k_axis, component) if axis is not None]
    array = np.transpose(data, order)
    if frame_axis is None:
        array = array[None]
    if k_axis is not None:
        array = array[:, :, :, 0]
    array, rescaled = to_uint8(array)
    accumulator = FrameAccumulator(path, max_voxels, expected_frames=len(array))
    for frame in array:
        accumulator.add(frame)
    grey, rgb = accumulator.finish()

    meta = {"format": "nrrd", "sequence": frame_axis is not None and _is_list(header, frame_axis)}
    if rescaled:
        meta["intensity_rescaled"] = True
    for key in ("DataNodeClassName",):
        if key in header:
            meta["data_node_class"] = str(header[key])
    fps = _sequence_fps(header, frame_axis) if frame_axis is not None else None
    if fps is None:
        fps = _number(header.get("lungus_fps"))
    return Clip(
        grey, fps=fps, spacing_mm=_spacing_mm(header, i_axis, j_axis), source=path, meta=meta, rgb=rgb
    )


def _is_list(header: dict, axis: int) -> bool:
    kinds = header.get("kinds") or []
    return axis < len(kinds) and str(kinds[axis]).lower() == "list"


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _spacing_mm(header: dict, i_axis: int, j_axis: int) -> tuple[float, float] | None:
    if str(header.get("lungus_spacing", "")).lower() == "unknown":
        return None
    units = [str(unit).lower() for unit in (header.get("space units") or [])]
    scale = _SPACE_UNIT_TO_MM.get(units[0], 1.0) if units else 1.0
    try:
        if header.get("space directions") is not None:
            directions = np.asarray(header["space directions"], dtype=float)
            column = float(np.linalg.norm(directions[i_axis]))
            row = float(np.linalg.norm(directions[j_axis]))
        elif header.get("spacings") is not None:
            spacings = np.asarray(header["spacings"], dtype=float)
            column, row = float(spacings[i_axis]), float(spacings[j_axis])
        else:
            return None
    except (IndexError, TypeError, ValueError):
        return None  # spacing is optional: a malformed one is left unknown
    if not (math.isfinite(row) and math.isfinite(column) and row > 0 and column > 0):
        return None
    return (row * scale, column * scale)


#: NRRD spaces Slicer reads with x and y negated from its RAS, i.e. as LPS; measured with slicer-core's
#: vtkMRMLVolumeSequenceStorageNode (Testing/bridge/test_bridge_annotation_geometry.py): a header with
#: no space, or one Slicer does not know, is read as LPS too. RAS is taken as it is; LAS (read by
#: Slicer with its z turned over as well) is left unknown.
_RAS_SPACES = {"right-anterior-superior", "ras"}
_UNKNOWN_SPACES = {"left-anterior-superior", "las"}


def nrrd_ijk_to_lps(header: dict, path: Path):
    """The IJK-to-LPS of the volume Slicer reads from this NRRD header (a SlicerGeometry), or None.

    As vtkMRMLVolumeSequenceStorageNode and Slicer's NRRD readers do: the I, J (and K) columns are
    the space directions of the column, row (and slice) axes, or the ``spacings`` along unrotated
    axes; the translation is the space origin (0 when absent); space units are not applied.
    A header without spatial directions or spacings, or in a ``-time`` space, gives None.
    """
    space = str(header.get("space", "")).strip().lower()
    if space in _UNKNOWN_SPACES or space.endswith("-time"):
        return None
    _, _, spatial = _axes(header, path)
    if len(spatial) < 2:
        return None
    matrix = np.eye(4)
    try:
        if header.get("space directions") is not None:
            directions = np.asarray(header["space directions"], dtype=float)
            if directions.ndim != 2 or directions.shape[1] != 3:
                return None
            for column, axis in enumerate(spatial[:3]):
                matrix[:3, column] = directions[axis]
        elif header.get("spacings") is not None:
            spacings = np.asarray(header["spacings"], dtype=float)
            for column, axis in enumerate(spatial[:3]):
                matrix[column, column] = spacings[axis]
        else:
            return None
        if header.get("space origin") is not None:
            matrix[:3, 3] = np.asarray(header["space origin"], dtype=float)[:3]
    except (IndexError, TypeError, ValueError):
        return None  # a malformed geometry is left unknown, as the spacing is
    if not np.isfinite(matrix).all() or abs(np.linalg.det(matrix[:3, :3])) < 1e-12:
        return None
    if space in _RAS_SPACES:
        matrix = RAS_TO_LPS @ matrix
    space_name = space or "no space, read as LPS"
    return SlicerGeometry(matrix, f"the NRRD header's space directions and origin ({space_name})")


def _sequence_fps(header: dict, frame_axis: int) -> float | None:
    """Frames per second from Slicer's index values, when the index is time."""
    raw_values = None
    for key, value in header.items():
        if _INDEX_VALUES.match(str(key)):
            raw_values = str(value).split()
            break
    if not raw_values or len(raw_values) < 2:
        return None
    try:
        values = np.array([float(urllib.parse.unquote(value)) for value in raw_values])
    except ValueError:
        return None  # text index (e.g. names): no time axis
    labels = list(header.get("labels") or [])
    units = list(header.get("units") or [])
    label = str(labels[frame_axis]).lower() if frame_axis < len(labels) else ""
    unit = str(units[frame_axis]).lower() if frame_axis < len(units) else ""
    seconds_per_unit = _TIME_UNIT_TO_S.get(unit)
    if seconds_per_unit is None:
        if unit or label not in ("time", "t"):
            return None  # frame numbers or an unknown unit: the rate is not in the file
        seconds_per_unit = 1.0
    step = (values[-1] - values[0]) / (len(values) - 1) * seconds_per_unit
    return 1.0 / step if step > 0 and math.isfinite(step) else None


# --------------------------------------------------------------------------- writing


def _encoding(compression: str | None) -> str:
    if compression not in (None, "gzip"):
        raise ValueError(f"NRRD compression must be None or 'gzip', got {compression!r}")
    return "gzip" if compression == "gzip" else "raw"


def _spatial_directions(clip: Clip) -> list[list[float]]:
    row_mm, column_mm = clip.spacing_mm or (1.0, 1.0)
    return [[column_mm, 0.0, 0.0], [0.0, row_mm, 0.0], [0.0, 0.0, 1.0]]


def _write(path: Path, data: np.ndarray, header: dict, compression: str | None) -> Path:
    import nrrd

    with atomic_path(path, suffix=".nrrd") as temporary:
        # Level 1: Slicer-sized clips gzip several times faster than at the default 9, for ~5% more bytes.
        nrrd.write(str(temporary), data, header, index_order="F", compression_level=1)
    return path


def write_seq_nrrd(clip: Clip, path: Path, compression: str | None = None) -> Path:
    """A Slicer volume sequence, one 2-D frame (a 1-slice volume) per sequence item."""
    nan_row = [math.nan] * 3
    if clip.rgb is not None:
        data = np.transpose(clip.rgb, (3, 2, 1, 0))[:, :, :, None, :]  # (3, W, H, 1, T)
        kinds = ["RGB-color", "domain", "domain", "domain", "list"]
        directions = [nan_row] + _spatial_directions(clip) + [nan_row]
        node_class = "vtkMRMLVectorVolumeNode"
    else:
        data = np.transpose(clip.frames, (2, 1, 0))[:, :, None, :]  # (W, H, 1, T)
        kinds = ["domain", "domain", "domain", "list"]
        directions = _spatial_directions(clip) + [nan_row]
        node_class = "vtkMRMLScalarVolumeNode"
    if clip.fps:
        index_name, index_unit = SEQUENCE_INDEX_NAME, SEQUENCE_INDEX_UNIT
        values = [format(index / clip.fps, ".10g") for index in range(clip.n_frames)]
    else:
        index_name, index_unit = "frame", ""
        values = [str(index) for index in range(clip.n_frames)]
    header = {
        "space": "left-posterior-superior",
        "space directions": np.array(directions, dtype=float),
        "kinds": kinds,
        "labels": [""] * (len(kinds) - 1) + [index_name],
        "units": [""] * (len(kinds) - 1) + [index_unit],
        "encoding": _encoding(compression),
        "space origin": np.zeros(3),
        "DataNodeClassName": node_class,
        # Slicer numbers the sequence axis 3 whether or not a component axis comes first.
        "axis 3 index type": "numeric",
        "axis 3 index values": " ".join(values),
    }
    if clip.spacing_mm is None:
        header["lungus_spacing"] = "unknown"
    return _write(path, data, header, compression)


def write_nrrd(clip: Clip, path: Path, compression: str | None = None) -> Path:
    """A plain 3-D NRRD: columns, rows, frames (colour: RGB-color components first)."""
    if clip.rgb is not None:
        data = np.transpose(clip.rgb, (3, 2, 1, 0))  # (3, W, H, T)
        kinds = ["RGB-color", "domain", "domain", "domain"]
        directions = [[math.nan] * 3] + _spatial_directions(clip)
    else:
        data = np.transpose(clip.frames, (2, 1, 0))  # (W, H, T)
        kinds = ["domain", "domain", "domain"]
        directions = _spatial_directions(clip)
    header = {
        "space": "left-posterior-superior",
        "space directions": np.array(directions, dtype=float),
        "kinds": kinds,
        "encoding": _encoding(compression),
        "space origin": np.zeros(3),
    }
    if clip.fps:
        header["lungus_fps"] = format(clip.fps, ".10g")
    if clip.spacing_mm is None:
        header["lungus_spacing"] = "unknown"
    return _write(path, data, header, compression)
