"""Ultrasound DICOM: single- and multi-frame, grey or colour, native or JPEG-compressed.

Reading decodes frame by frame through pydicom's pixel plugins (pylibjpeg, Pillow), so
YBR_FULL/YBR_FULL_422 and JPEG transfer syntaxes arrive as RGB and are reduced to grey
unless the colour matters. Patient identifiers stay out of ``Clip.meta`` unless the
caller asks for them.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
import importlib.metadata
import importlib.util
import logging
import math
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lungus.atomic import atomic_path
from lungus.errors import LungUSError, error_detail
from lungus.io.clip import Clip
from lungus.io.formats import check_voxels
from lungus.io.geometry import SlicerGeometry
from lungus.io.pixels import FrameAccumulator, to_uint8

US_MULTIFRAME_STORAGE = "1.2.840.10008.5.1.4.1.1.3.1"
US_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.6.1"

#: Copied into ``meta["identifiers"]`` only when ``identifiers=True``.
IDENTIFYING_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "OtherPatientIDs",
    "AccessionNumber",
    "StudyDate",
    "StudyTime",
    "SeriesDate",
    "ContentDate",
    "AcquisitionDateTime",
    "StudyID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "InstitutionName",
    "InstitutionAddress",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "OperatorsName",
    "StationName",
    "DeviceSerialNumber",
)
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def _pydicom_major() -> int:
    try:
        return int(importlib.metadata.version("pydicom").split(".")[0])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return 0


#: Slicer 5.10 bundles pydicom 2.4, 5.12 pydicom 3.0: the reader and writer work with both.
PYDICOM_MAJOR = _pydicom_major()
_CM_UNITS = 3  # PhysicalUnitsX/YDirection code for centimetres


@contextlib.contextmanager
def _quiet_pydicom() -> Iterator[list]:
    """Collect pydicom's warnings instead of printing them: a damaged file gets one clear
    LungUSError, not a warning line on stderr first."""
    logger = logging.getLogger("pydicom")
    disabled = logger.disabled
    logger.disabled = True
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield caught
    finally:
        logger.disabled = disabled


def read_dicom_dataset(path: Path):
    """The file's dataset, its large elements (the pixel data) left on disk until used; LungUSError
    for a file that is not DICOM or ends inside its pixel data."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    with _quiet_pydicom() as caught:
        try:
            # Large elements (the pixel data) stay on disk until decoded frame by frame.
            ds = pydicom.dcmread(path, defer_size=4096)
        except InvalidDicomError:
            try:
                ds = pydicom.dcmread(path, defer_size=4096, force=True)
            except Exception as error:  # noqa: BLE001 - pydicom raises many types for junk input
                raise LungUSError(f"not a readable DICOM file ({error_detail(error)})", path) from error
        except Exception as error:  # noqa: BLE001
            raise LungUSError(f"truncated or corrupt DICOM file ({error_detail(error)})", path) from error
    for warning in caught:
        if "end of file" in str(warning.message).lower():
            raise LungUSError("truncated DICOM file: it ends inside the pixel data", path)
    return ds


def element_value(ds, keyword: str, default: Any = None) -> Any:
    """``ds.get(keyword, default)``, or ``default`` when the element cannot be decoded (an
    unknown VR, a malformed number): optional fields (rate, spacing, regions) are then left
    unknown rather than failing the clip. Pixel and image-size fields are checked strictly."""
    try:
        return ds.get(keyword, default)
    except Exception:  # noqa: BLE001 - pydicom raises NotImplementedError, ValueError, ... here
        return default


def _check_transfer_syntax(ds, path: Path) -> None:
    """Refuse a file whose transfer syntax UID is not a transfer syntax pydicom knows."""
    uid = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if uid is None:
        return
    try:
        known = bool(uid.is_transfer_syntax)
    except Exception:  # noqa: BLE001 - a damaged UID value
        known = False
    if not known:
        raise LungUSError(
            f"unknown DICOM transfer syntax UID {str(uid)[:64]!r}; cannot decode its pixels", path
        )


def read_dicom(path: Path, max_voxels: int, identifiers: bool = False) -> Clip:
    ds = read_dicom_dataset(path)
    _check_transfer_syntax(ds, path)
    if not any(keyword in ds for keyword in _PIXEL_KEYWORDS):
        raise LungUSError("the DICOM file has no pixel data (not an image object)", path)
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
        n_frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
        samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
        bits_allocated = int(getattr(ds, "BitsAllocated", 8) or 8)
        photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    except Exception as error:  # noqa: BLE001 - also pydicom's NotImplementedError for an unknown VR
        raise LungUSError(f"the DICOM image header is incomplete ({error_detail(error)})", path) from error
    check_voxels(path, n_frames, rows, columns, max_voxels)
    if samples not in (1, 3):
        raise LungUSError(f"unsupported SamplesPerPixel={samples} (expected 1 or 3)", path)

    frames, rgb, rescaled = _decode_frames(path, ds, n_frames, bits_allocated, photometric, max_voxels)
    meta = _clip_meta(ds, photometric, n_frames)
    if rescaled:
        meta["intensity_rescaled"] = True
    if identifiers:
        meta["identifiers"] = {
            keyword: str(element_value(ds, keyword))
            for keyword in IDENTIFYING_KEYWORDS
            if element_value(ds, keyword) not in (None, "")
        }
    return Clip(frames, fps=dicom_fps(ds), spacing_mm=dicom_spacing_mm(ds), source=path, meta=meta, rgb=rgb)


def _decode_frames(path: Path, ds, n_frames: int, bits_allocated: int, photometric: str, max_voxels: int):
    with _quiet_pydicom():
        return _decode_pixels(path, ds, n_frames, bits_allocated, photometric, max_voxels)


def _pixel_function(name: str):
    """A pixel helper (iter_pixels, apply_voi_lut, ...) from where this pydicom keeps it."""
    module = "pydicom.pixels" if PYDICOM_MAJOR >= 3 else "pydicom.pixel_data_handlers.util"
    return getattr(importlib.import_module(module), name)


JPEG_BASELINE = "1.2.840.10008.1.2.4.50"


def _decoding_options(transfer_syntax: Any) -> dict[str, str]:
    """Decoder options: JPEG Baseline through Pillow only.

    pydicom tries its plugins in turn, and when Pillow refuses a damaged baseline frame it hands
    the frame to pylibjpeg, whose libjpeg loops forever on some of them (found by fuzzing) and
    cannot be stopped from Python. Pillow reads every 8-bit baseline frame a scanner writes and
    is bundled with Slicer; what it refuses is damaged, and is refused here in one line.
    """
    if str(transfer_syntax) == JPEG_BASELINE and importlib.util.find_spec("PIL"):
        return {"decoding_plugin": "pillow"}
    return {}


def _whole_clip_pixels(path: Path, ds, photometric: str, options: dict[str, str]) -> np.ndarray:
    """Every frame at once, colour as RGB."""
    if PYDICOM_MAJOR >= 3:
        return _pixel_function("pixel_array")(path, **options)
    # pydicom 2.4 (Slicer 5.10) decodes through the dataset and leaves YCbCr as it is; its
    # handlers fall back from Pillow to pylibjpeg as pydicom 3's plugins do, so call Pillow's alone.
    if options.get("decoding_plugin") == "pillow":
        from pydicom.pixel_data_handlers import pillow_handler

        data = _pixel_function("reshape_pixel_array")(ds, pillow_handler.get_pixeldata(ds))
    else:
        data = ds.pixel_array
    if photometric.startswith("YBR"):
        data = _pixel_function("convert_color_space")(data, "YBR_FULL", "RGB")
    return data


def _decode_pixels(path: Path, ds, n_frames: int, bits_allocated: int, photometric: str, max_voxels: int):
    rescaled = False
    transfer_syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    compressed = bool(getattr(transfer_syntax, "is_compressed", False))
    options = _decoding_options(transfer_syntax)
    # Deep or palette pixels need the whole clip for one consistent intensity scale;
    # pydicom 3.0's iter_pixels mis-sizes native (uncompressed) YBR_FULL_422 frames, and
    # pydicom 2.4 has no frame-by-frame decoding.
    whole_clip = (
        PYDICOM_MAJOR < 3
        or bits_allocated != 8
        or photometric == "PALETTE COLOR"
        or (photometric == "YBR_FULL_422" and not compressed)
    )
    try:
        if not whole_clip:
            accumulator = FrameAccumulator(path, max_voxels, expected_frames=n_frames)
            for frame in _pixel_function("iter_pixels")(path, **options):
                if photometric == "MONOCHROME1":
                    frame = 255 - frame
                accumulator.add(frame)
            grey, rgb = accumulator.finish()
        else:
            data = _whole_clip_pixels(path, ds, photometric, options)
            if photometric == "PALETTE COLOR":
                data = _pixel_function("apply_color_lut")(data, ds)
            elif "WindowCenter" in ds or "VOILUTSequence" in ds:
                data = _pixel_function("apply_voi_lut")(data, ds)
            data, rescaled = to_uint8(data)
            if photometric == "MONOCHROME1":
                data = 255 - data
            if n_frames == 1:
                data = data[None]
            accumulator = FrameAccumulator(path, max_voxels, expected_frames=len(data))
            for frame in data:
                accumulator.add(frame)
            grey, rgb = accumulator.finish()
    except LungUSError:
        raise
    except MemoryError as error:
        raise LungUSError("not enough memory to decode the DICOM pixel data", path) from error
    except Exception as error:  # noqa: BLE001 - decoders raise many types for broken data
        raise LungUSError(
            f"cannot decode the DICOM pixel data, the file is truncated or corrupt or needs a decoder "
            f"that is not installed ({error_detail(error)})",
            path,
        ) from error
    if len(grey) != n_frames:
        raise LungUSError(f"decoded {len(grey)} frames but the header says NumberOfFrames={n_frames}", path)
    return grey, rgb, rescaled


def _clip_meta(ds, photometric: str, n_frames: int) -> dict[str, Any]:
    file_meta = getattr(ds, "file_meta", None)
    transfer_syntax = getattr(file_meta, "TransferSyntaxUID", None) if file_meta is not None else None
    meta: dict[str, Any] = {
        "format": "dicom",
        "modality": str(element_value(ds, "Modality", "") or ""),
        "sop_class": _uid_name(element_value(ds, "SOPClassUID")),
        "transfer_syntax": _uid_name(transfer_syntax),
        "photometric": photometric,
        "number_of_frames": n_frames,
    }
    for keyword, key in (
        ("Manufacturer", "manufacturer"),
        ("ManufacturerModelName", "model"),
        ("BurnedInAnnotation", "burned_in_annotation"),
        ("TransducerData", "transducer"),
    ):
        value = element_value(ds, keyword)
        if value not in (None, ""):
            meta[key] = str(value)
    region = ultrasound_region(ds)
    if region is not None:
        meta["us_region_bbox"] = [
            int(element_value(region, "RegionLocationMinY0", 0)),
            int(element_value(region, "RegionLocationMinX0", 0)),
            int(element_value(region, "RegionLocationMaxY1", 0)) + 1,
            int(element_value(region, "RegionLocationMaxX1", 0)) + 1,
        ]
    return meta


def _uid_name(uid) -> str | None:
    if uid is None:
        return None
    name = getattr(uid, "name", None)
    return str(name or uid)


def ultrasound_region(ds):
    """The SequenceOfUltrasoundRegions item that describes the 2-D image, or None.

    Prefers tissue regions (RegionSpatialFormat 1) measured in centimetres, then the
    largest by area: a Doppler or M-mode strip beside the B-mode image is skipped.
    """
    regions = list(element_value(ds, "SequenceOfUltrasoundRegions") or [])
    if not regions:
        return None

    def rank(region) -> tuple:
        width = int(element_value(region, "RegionLocationMaxX1", 0) or 0) - int(
            element_value(region, "RegionLocationMinX0", 0) or 0
        )
        height = int(element_value(region, "RegionLocationMaxY1", 0) or 0) - int(
            element_value(region, "RegionLocationMinY0", 0) or 0
        )
        in_cm = (
            element_value(region, "PhysicalUnitsXDirection") == _CM_UNITS
            and element_value(region, "PhysicalUnitsYDirection") == _CM_UNITS
        )
        return (element_value(region, "RegionSpatialFormat") == 1, in_cm, width * height)

    return max(regions, key=rank)


def dicom_spacing_mm(ds) -> tuple[float, float] | None:
    """(row, column) pixel spacing in mm: ultrasound regions (cm) first, then PixelSpacing."""
    region = ultrasound_region(ds)
    if region is not None and (
        element_value(region, "PhysicalUnitsXDirection") == _CM_UNITS
        and element_value(region, "PhysicalUnitsYDirection") == _CM_UNITS
    ):
        try:
            delta_x = abs(float(element_value(region, "PhysicalDeltaX"))) * 10.0
            delta_y = abs(float(element_value(region, "PhysicalDeltaY"))) * 10.0
        except (TypeError, ValueError):
            delta_x = delta_y = 0.0
        if delta_x > 0 and delta_y > 0 and math.isfinite(delta_x) and math.isfinite(delta_y):
            return (delta_y, delta_x)
    spacing = element_value(ds, "PixelSpacing") or element_value(ds, "ImagerPixelSpacing")
    if spacing is not None and len(spacing) == 2:
        try:
            row, column = float(spacing[0]), float(spacing[1])
        except (TypeError, ValueError):
            return None
        if row > 0 and column > 0:
            return (row, column)
    return None


#: DICOMImageSequencePlugin's region checks: RegionSpatialFormat 1 (2-D tissue), RegionDataType 1
#: (tissue) or 2 (colour flow), PhysicalUnitsX/YDirection 3 (cm).
_SLICER_REGION_FORMAT, _SLICER_REGION_TYPES = 1, (1, 2)


def slicer_dicom_ijk_to_lps(ds):
    """The IJK-to-LPS Slicer gives this ultrasound DICOM's volume (a SlicerGeometry), or None where
    Slicer's own spacing comes from its ITK/GDCM reader instead (lungus.io.geometry).

    Slicer 5.10/5.12 Modules/Scripted/DICOMPlugins/DICOMImageSequencePlugin.py, which
    AnnotateUltrasound loads DICOMs through: ``examineFiles`` sets ``spacingMmPerPixel =
    [PhysicalDeltaX * 10, PhysicalDeltaY * 10]`` only for Modality US with exactly one
    SequenceOfUltrasoundRegions item of RegionSpatialFormat 1, RegionDataType 1 or 2 and both
    PhysicalUnits 3 (cm); ``addSequenceFromImageData`` then sets IJKToRAS = diag(-1, -1, 1) (the
    image turned 180 degrees so that it shows upright), ``SetSpacing(spacingX, spacingY, 1)`` and
    no translation (origin 0, each frame's image origin reset to 0). In LPS (x and y negated) that
    is diag(PhysicalDeltaX * 10, PhysicalDeltaY * 10, 1): x = column x dx, y = row x dy, origin 0.
    """
    if str(element_value(ds, "Modality", "") or "").strip() != "US":
        return None
    regions = list(element_value(ds, "SequenceOfUltrasoundRegions") or [])
    if len(regions) != 1:
        return None
    region = regions[0]
    if not (
        element_value(region, "RegionSpatialFormat") == _SLICER_REGION_FORMAT
        and element_value(region, "RegionDataType") in _SLICER_REGION_TYPES
        and element_value(region, "PhysicalUnitsXDirection") == _CM_UNITS
        and element_value(region, "PhysicalUnitsYDirection") == _CM_UNITS
    ):
        return None
    try:
        delta_x = float(element_value(region, "PhysicalDeltaX")) * 10.0
        delta_y = float(element_value(region, "PhysicalDeltaY")) * 10.0
    except (TypeError, ValueError):
        return None  # absent or malformed: the plugin would fail on it; the geometry is unknown
    if not (math.isfinite(delta_x) and math.isfinite(delta_y) and delta_x != 0 and delta_y != 0):
        return None  # a singular volume: no pixel can be found from a point
    return SlicerGeometry(
        np.diag([delta_x, delta_y, 1.0, 1.0]),
        f"the DICOM's ultrasound region ({delta_y:.4g} x {delta_x:.4g} mm per pixel, as Slicer loads it)",
    )


def dicom_fps(ds) -> float | None:
    """Frames per second from FrameTime, FrameTimeVector, CineRate or RecommendedDisplayFrameRate."""

    def positive(value) -> float | None:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        return number if math.isfinite(number) and number > 0 else None

    frame_time_ms = positive(element_value(ds, "FrameTime"))
    if frame_time_ms:
        return 1000.0 / frame_time_ms
    vector = element_value(ds, "FrameTimeVector")
    if vector is not None:
        try:
            intervals = [float(value) for value in list(vector)[1:]]  # the first entry is 0 by definition
        except (TypeError, ValueError):
            intervals = []
        intervals = [value for value in intervals if value > 0]
        if intervals:
            return 1000.0 / float(np.mean(intervals))
    for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
        rate = positive(element_value(ds, keyword))
        if rate:
            return rate
    return None


# --------------------------------------------------------------------------- writing

#: Default fps written for a multi-frame DICOM whose clip does not know its own.
DEFAULT_DICOM_FPS = 25.0


def write_dicom(clip: Clip, path: Path, compression: str | None = None, quality: int = 95) -> Path:
    """An Ultrasound Multi-frame Image Storage file (one frame: Ultrasound Image Storage).

    Spacing goes to SequenceOfUltrasoundRegions (PhysicalDeltaX/Y in cm) and PixelSpacing;
    the rate to CineRate and FrameTime. ``compression="jpeg"`` stores JPEG baseline frames
    (grey: MONOCHROME2, colour: YBR_FULL_422), encoded with OpenCV and encapsulated.
    Patient fields are written empty: nothing identifying leaves the clip.
    """
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid

    if compression not in (None, "jpeg"):
        raise ValueError(f"DICOM compression must be None or 'jpeg', got {compression!r}")
    colour = clip.rgb is not None
    n_frames = clip.n_frames
    multiframe = n_frames > 1
    sop_class = US_MULTIFRAME_STORAGE if multiframe else US_IMAGE_STORAGE
    now = datetime.datetime.now()

    ds = pydicom.Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "US"
    ds.PatientName = ""
    ds.PatientID = ""
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.ReferringPhysicianName = ""
    ds.AccessionNumber = ""
    ds.StudyID = ""
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.ContentDate = now.strftime("%Y%m%d")
    ds.ContentTime = now.strftime("%H%M%S")
    ds.Manufacturer = "lungus"
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.PatientOrientation = ""
    ds.Laterality = ""
    ds.BurnedInAnnotation = "NO" if clip.fan is not None and clip.meta.get("fan_cropped") else "YES"

    ds.Rows, ds.Columns = clip.height, clip.width
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if colour:
        ds.SamplesPerPixel = 3
        ds.PlanarConfiguration = 0
        ds.PhotometricInterpretation = "YBR_FULL_422" if compression == "jpeg" else "RGB"
    else:
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"

    fps = clip.fps or DEFAULT_DICOM_FPS
    if multiframe:
        ds.NumberOfFrames = n_frames
        ds.FrameIncrementPointer = pydicom.tag.Tag("FrameTime")
        ds.FrameTime = f"{1000.0 / fps:.6g}"
        ds.CineRate = max(1, int(round(fps)))
        ds.RecommendedDisplayFrameRate = max(1, int(round(fps)))
    if clip.spacing_mm is not None:
        row_mm, column_mm = clip.spacing_mm
        region = pydicom.Dataset()
        region.RegionSpatialFormat = 1  # 2-D tissue
        region.RegionDataType = 1  # tissue
        region.RegionFlags = 0
        region.RegionLocationMinX0 = 0
        region.RegionLocationMinY0 = 0
        region.RegionLocationMaxX1 = clip.width - 1
        region.RegionLocationMaxY1 = clip.height - 1
        region.PhysicalUnitsXDirection = _CM_UNITS
        region.PhysicalUnitsYDirection = _CM_UNITS
        region.PhysicalDeltaX = column_mm / 10.0
        region.PhysicalDeltaY = row_mm / 10.0
        ds.SequenceOfUltrasoundRegions = Sequence([region])
        ds.PixelSpacing = [f"{row_mm:.10g}", f"{column_mm:.10g}"]

    pixels = clip.rgb if colour else clip.frames
    if compression == "jpeg":
        ds.PixelData = encapsulate([_jpeg_frame(frame, quality, path) for frame in pixels], has_bot=True)
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionMethod = "ISO_10918_1"
        transfer_syntax = JPEGBaseline8Bit
    else:
        ds.PixelData = np.ascontiguousarray(pixels).tobytes()
        ds["PixelData"].VR = "OB"
        transfer_syntax = ExplicitVRLittleEndian

    file_meta = FileMetaDataset()
    file_meta.MediaStorageSOPClassUID = sop_class
    file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    file_meta.TransferSyntaxUID = transfer_syntax
    file_meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = file_meta
    ds.preamble = b"\x00" * 128
    with atomic_path(path, suffix=path.suffix or ".dcm") as temporary:
        save_dataset(ds, temporary)
    return path


def save_dataset(ds, path: Path) -> None:
    """Save ``ds`` as a DICOM file (preamble, file meta), with the pydicom Slicer bundles:
    3.x says ``enforce_file_format=True``, 2.4 (Slicer 5.10) ``write_like_original=False``."""
    if PYDICOM_MAJOR >= 3:
        ds.save_as(path, enforce_file_format=True)
    else:
        syntax = ds.file_meta.TransferSyntaxUID  # 2.4 wants the encoding spelled out as well
        ds.is_little_endian, ds.is_implicit_VR = syntax.is_little_endian, syntax.is_implicit_VR
        ds.save_as(path, write_like_original=False)


def _jpeg_frame(frame: np.ndarray, quality: int, path: Path) -> bytes:
    import cv2

    if frame.ndim == 3:
        image = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        parameters = [
            cv2.IMWRITE_JPEG_QUALITY,
            int(quality),
            # 4:2:2 chroma subsampling, as the YBR_FULL_422 photometric interpretation states.
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
        ]
    else:
        image = frame
        parameters = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    ok, encoded = cv2.imencode(".jpg", image, parameters)
    if not ok:
        raise LungUSError("OpenCV could not JPEG-encode a frame", path)
    return encoded.tobytes()
