"""Class masks from label image files: PNG (one, or a folder with one per frame), NRRD, .seq.nrrd, .seg.nrrd.

``read_label_masks(path)`` returns (T, H, W) uint8 ids of ``lungus.data.labels.schemes.SEG_CLASSES``:
0 background, 1 pleural line, 2 A-line, 3 B-line, 4 confluent B-line, 5 rib shadow.

- **PNG** (also BMP, TIFF): grey or palette images hold the class ids themselves; colour
  images are painted in the SEG_CLASSES colours (background black). A folder of such
  images is one frame per image in natural order (frame2 before frame10). JPEG is refused:
  its compression changes label values.
- **NRRD / .seq.nrrd**: a labelmap volume or a Slicer volume sequence of class ids, read by
  :func:`lungus.io.read_clip` (frames along the third axis or the sequence axis).
- **.seg.nrrd** (a Slicer segmentation, as vtkMRMLSegmentationStorageNode writes it): the
  header's ``Segment<N>_Name``, ``Segment<N>_LabelValue`` and ``Segment<N>_Layer`` say which
  value of which layer is which segment; a 4-D file holds overlapping segments in layers
  (``kinds: list domain domain domain``). Segments become classes by name (below); where
  they overlap the later class in PAINT_ORDER wins (a B-line over the pleura it starts
  from, confluence over a B-line). A file cropped to its extent
  (``Segmentation_ReferenceImageExtentOffset``) is placed back in the frame given by
  ``shape``. Frames are the third (k) axis.

Segment names, compared ignoring case, spaces, hyphens and underscores
(``SEGMENT_NAMES``; the SEG_CLASSES names themselves always work):

=====================  ==========================================================
class                  segment names
=====================  ==========================================================
0 background           background, bg
1 pleural line         pleural line(s), pleura line(s), pleura, pleural
2 A-line               A-line(s), Aline(s)
3 B-line               B-line(s), Bline(s), discrete B-line(s)
4 confluent B-line     confluent B-line(s), confluent, confluence, white lung
5 rib shadow           rib shadow(s), rib(s), shadow, acoustic shadow
=====================  ==========================================================

Other names raise an error unless ``segment_classes`` maps them. Label values that are not
class ids raise an error unless ``value_map`` maps them (``{255: 3}`` reads a 0/255 B-line
mask). Every problem is a one-line LungUSError naming the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from lungus.data.labels.annotation_labels import IGNORE_INDEX
from lungus.data.labels.schemes import (
    A_LINE,
    B_LINE,
    BACKGROUND,
    CONFLUENT,
    PLEURA,
    RIB_SHADOW,
    SEG_CLASS_IDS,
    SEG_CLASSES,
)
from lungus.errors import LungUSError

N_CLASSES = len(SEG_CLASSES)
LOSSY_SUFFIXES = (".jpg", ".jpeg")
STILL_SUFFIXES = (".png", ".bmp", ".tif", ".tiff")
#: The file :func:`write_label_masks` writes: a gzip-compressed volume sequence Slicer opens.
MASK_SUFFIX = ".seq.nrrd"
#: Where segments overlap, a class later in this order wins.
PAINT_ORDER = (BACKGROUND, RIB_SHADOW, A_LINE, PLEURA, B_LINE, CONFLUENT)


def _name_key(name: str) -> str:
    return re.sub(r"[\s\-_]+", "", str(name)).lower()


SEGMENT_NAMES: dict[str, int] = {
    _name_key(name): class_id
    for class_id, names in (
        (BACKGROUND, ("background", "bg")),
        (PLEURA, ("pleural line", "pleural lines", "pleura line", "pleura lines", "pleura", "pleural")),
        (A_LINE, ("A-line", "A-lines")),
        (B_LINE, ("B-line", "B-lines", "discrete B-line", "discrete B-lines")),
        (CONFLUENT, ("confluent B-line", "confluent B-lines", "confluent", "confluence", "white lung")),
        (RIB_SHADOW, ("rib shadow", "rib shadows", "rib", "ribs", "shadow", "acoustic shadow")),
    )
    for name in names
} | {_name_key(name): class_id for name, class_id in SEG_CLASS_IDS.items()}


def segment_class(name: str, extra: Mapping[str, int] | None = None) -> int | None:
    """The class id a segment name stands for, or None."""
    key = _name_key(name)
    for mapping in ({_name_key(k): v for k, v in (extra or {}).items()}, SEGMENT_NAMES):
        if key in mapping:
            return int(mapping[key])
    return None


def _class_list() -> str:
    return ", ".join(f"{c.id} {c.name}" for c in SEG_CLASSES)


# --------------------------------------------------------------------------- still images


def _colour_codes() -> dict[int, int]:
    codes = {0: BACKGROUND}
    for seg_class in SEG_CLASSES:
        if seg_class.rgb is not None:
            r, g, b = seg_class.rgb
            codes[(r << 16) | (g << 8) | b] = seg_class.id
    return codes


def _colour_labels(rgb: np.ndarray, path: Path) -> np.ndarray:
    codes = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    unique, inverse = np.unique(codes, return_inverse=True)
    known = _colour_codes()
    unknown = [int(code) for code in unique if int(code) not in known]
    if unknown:
        shown = ", ".join(f"#{code:06x}" for code in unknown[:3]) + (" ..." if len(unknown) > 3 else "")
        raise LungUSError(
            f"colours {shown} are not segmentation class colours (lungus.data.labels.schemes.SEG_CLASSES); "
            "save class ids as a grey or palette PNG",
            path,
        )
    return np.array([known[int(code)] for code in unique], dtype=np.int64)[inverse].reshape(codes.shape)


def _read_still(path: Path) -> np.ndarray:
    """(H, W) integer labels of one image file."""
    from PIL import Image, UnidentifiedImageError

    if path.suffix.lower() in LOSSY_SUFFIXES:
        raise LungUSError("JPEG compression changes label values; save label images as PNG", path)
    try:
        with Image.open(path) as image:
            if getattr(image, "n_frames", 1) > 1:
                raise LungUSError("multi-page label images are not read; use one image per frame", path)
            mode = image.mode
            if mode in ("RGB", "RGBA", "RGBX", "CMYK", "YCbCr"):
                rgb = np.asarray(image.convert("RGB"))
                if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
                    return rgb[..., 0].astype(np.int64)
                return _colour_labels(rgb, path)
            if mode in ("LA", "PA"):
                return np.asarray(image)[..., 0].astype(np.int64)
            array = np.asarray(image)  # L, P (palette indices), 1, I, I;16, F
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise LungUSError(f"not a readable label image ({' '.join(str(error).split())})", path) from error
    if array.dtype == np.bool_:
        return array.astype(np.int64)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise LungUSError("label image holds fractional values; class ids must be whole numbers", path)
    return array.astype(np.int64)


def _read_folder(folder: Path) -> np.ndarray:
    from lungus.io.arrays import frame_files

    files = frame_files(folder)
    if not files:
        raise LungUSError(f"the folder holds no label images ({' '.join(STILL_SUFFIXES)})", folder)
    frames = []
    for file in files:
        frame = _read_still(file)
        if frames and frame.shape != frames[0].shape:
            raise LungUSError(
                f"label image is {frame.shape[0]}x{frame.shape[1]} but {files[0].name} is "
                f"{frames[0].shape[0]}x{frames[0].shape[1]}",
                file,
            )
        frames.append(frame)
    return np.stack(frames)


# --------------------------------------------------------------------------- NRRD


def _read_nrrd_header(path: Path) -> dict:
    import nrrd

    try:
        return nrrd.read_header(str(path))
    except Exception as error:  # noqa: BLE001 - pynrrd raises NRRDError, ValueError, ... on junk
        raise LungUSError(f"not a readable NRRD file ({' '.join(str(error).split())})", path) from error


def _segments(header: dict) -> list[tuple[int, str, int, int]]:
    """(index, name, label value, layer) of every segment in a .seg.nrrd header."""
    segments = []
    for key in header:
        match = re.fullmatch(r"Segment(\d+)_LabelValue", str(key))
        if match:
            index = int(match.group(1))
            name = str(header.get(f"Segment{index}_Name", f"Segment{index}"))
            segments.append(
                (index, name, int(float(header[key])), int(float(header.get(f"Segment{index}_Layer", 0))))
            )
    return sorted(segments)


def _read_segmentation(
    path: Path, header: dict, shape: tuple[int, int] | None, segment_classes: Mapping[str, int] | None
) -> np.ndarray:
    import nrrd

    segments = _segments(header)
    classes = {}
    for index, name, _, _ in segments:
        class_id = segment_class(name, segment_classes)
        if class_id is None:
            raise LungUSError(
                f"segment {name!r} (Segment{index}) is not a LungUS class; name it pleural line, A-line, "
                "B-line, confluent B-line or rib shadow, or map it with segment_classes",
                path,
            )
        classes[index] = class_id
    for index, name, value, _ in segments:
        if value <= 0:
            raise LungUSError(
                f"segment {name!r} (Segment{index}) has label value {value}; it must be > 0", path
            )
    try:
        data, _ = nrrd.read(str(path), index_order="C")
    except Exception as error:  # noqa: BLE001
        raise LungUSError(f"truncated or corrupt NRRD data ({' '.join(str(error).split())})", path) from error
    kinds = [str(kind).lower() for kind in header.get("kinds") or []]
    if data.ndim == 4 and kinds and kinds[0] == "list":
        layers = data  # C order: (k, j, i, layer)
    elif data.ndim in (2, 3):
        layers = (data[None] if data.ndim == 2 else data)[..., None]
    else:
        raise LungUSError(
            f"segmentation with {data.ndim} axes (kinds {' '.join(kinds)}) is not a 2-D+t labelmap", path
        )
    labels = np.zeros(layers.shape[:3], dtype=np.uint8)
    for class_id in PAINT_ORDER:
        for index, name, value, layer in segments:
            if classes[index] != class_id:
                continue
            if not 0 <= layer < layers.shape[3]:
                raise LungUSError(
                    f"segment {name!r} is on layer {layer} but the file has {layers.shape[3]}", path
                )
            labels[layers[..., layer] == value] = class_id

    offset_text = str(header.get("Segmentation_ReferenceImageExtentOffset", "0 0 0")).split()
    offset = [int(float(v)) for v in offset_text] + [0] * (3 - len(offset_text))
    if any(offset) or (shape is not None and labels.shape[1:] != tuple(shape)):
        if shape is None:
            raise LungUSError(
                f"segmentation is cropped to its extent (offset {' '.join(map(str, offset))}); "
                "give the frame shape to place it",
                path,
            )
        i0, j0, k0 = offset[:3]
        height, width = shape
        if j0 < 0 or i0 < 0 or j0 + labels.shape[1] > height or i0 + labels.shape[2] > width:
            raise LungUSError(
                f"segmentation extent {labels.shape[2]}x{labels.shape[1]} at offset {i0} {j0} "
                f"does not fit a {height}x{width} frame",
                path,
            )
        placed = np.zeros((k0 + labels.shape[0], height, width), dtype=np.uint8)
        placed[k0:, j0 : j0 + labels.shape[1], i0 : i0 + labels.shape[2]] = labels
        labels = placed
    return labels


def _read_volume(path: Path) -> np.ndarray:
    from lungus.io import read_clip

    clip = read_clip(path, fan=False)
    if clip.rgb is not None or clip.meta.get("intensity_rescaled"):
        raise LungUSError(
            "label volume does not hold whole class ids 0-255 in one channel (it was colour, "
            "negative, fractional or larger than 255)",
            path,
        )
    return clip.frames


# --------------------------------------------------------------------------- public


def read_label_masks(
    path: str | os.PathLike,
    n_frames: int | None = None,
    *,
    shape: tuple[int, int] | None = None,
    value_map: Mapping[int, int] | None = None,
    segment_classes: Mapping[str, int] | None = None,
) -> np.ndarray:
    """(T, H, W) uint8 class masks from a label image file or folder (see the module docstring).

    n_frames, shape: what the clip has (T; H, W); a mismatch raises LungUSError.
    value_map: stored value -> class id, for files that do not store class ids.
    segment_classes: segment name -> class id, for .seg.nrrd names not in SEGMENT_NAMES.
    """
    path = Path(path)
    if not path.exists():
        raise LungUSError("label file not found", path)
    name = path.name.lower()
    if path.is_dir():
        labels = _read_folder(path)
    elif name.endswith(".nrrd") or name.endswith(".nhdr"):
        header = _read_nrrd_header(path)
        if _segments(header):
            labels = _read_segmentation(path, header, shape, segment_classes)
        else:
            labels = _read_volume(path)
    elif path.suffix.lower() in STILL_SUFFIXES + LOSSY_SUFFIXES:
        labels = _read_still(path)[None]
    else:
        raise LungUSError(
            "not a label image: expected .png (or a folder of them), .nrrd, .seq.nrrd or .seg.nrrd", path
        )

    labels = _apply_value_map(labels, value_map, path)
    if shape is not None and labels.shape[1:] != tuple(shape):
        raise LungUSError(
            f"label images are {labels.shape[1]}x{labels.shape[2]} but the clip is {shape[0]}x{shape[1]}",
            path,
        )
    if n_frames is not None and labels.shape[0] != n_frames:
        raise LungUSError(f"holds labels for {labels.shape[0]} frames but the clip has {n_frames}", path)
    return labels


def _apply_value_map(labels: np.ndarray, value_map: Mapping[int, int] | None, path: Path) -> np.ndarray:
    values = np.unique(labels)
    mapping = {int(k): int(v) for k, v in (value_map or {}).items()}
    bad_targets = sorted(v for v in mapping.values() if not 0 <= v < N_CLASSES)
    if bad_targets:
        raise ValueError(f"value_map maps to {bad_targets}, which are not class ids 0-{N_CLASSES - 1}")
    unknown = [int(v) for v in values if int(v) not in mapping and not 0 <= int(v) < N_CLASSES]
    if unknown == [IGNORE_INDEX]:
        check_unlabelled_frames(labels, path)
        unknown = []
    if unknown:
        shown = ", ".join(map(str, unknown[:5])) + (" ..." if len(unknown) > 5 else "")
        raise LungUSError(
            f"label values {shown} are not class ids ({_class_list()}); map them with value_map, "
            "e.g. {255: 3} for a 0/255 B-line mask",
            path,
        )
    if not mapping:
        return labels.astype(np.uint8)
    lookup = {int(v): mapping.get(int(v), int(v)) for v in values}
    table_values = np.array([lookup[int(v)] for v in values], dtype=np.uint8)
    return table_values[np.searchsorted(values, labels)]


def check_unlabelled_frames(labels: np.ndarray, path: Path) -> None:
    """IGNORE_INDEX (255) marks whole frames nobody labelled; a frame mixing it with class ids
    is refused, since that is what a 0/255 B-line mask looks like (map it with value_map)."""
    unlabelled = labels == IGNORE_INDEX
    mixed = np.flatnonzero(unlabelled.any(axis=(1, 2)) & ~unlabelled.all(axis=(1, 2)))
    if mixed.size:
        raise LungUSError(
            f"frame {int(mixed[0])} mixes label value 255 with class ids; 255 marks a whole frame nobody "
            "labelled (docs/formats.md#masks); for a 0/255 B-line mask map it with value_map {255: 3}",
            path,
        )


def write_label_masks(
    path: str | os.PathLike,
    masks: np.ndarray,
    *,
    fps: float | None = None,
    spacing_mm: tuple[float, float] | None = None,
) -> Path:
    """Write (T, H, W) class ids (255 on frames nobody labelled) as a gzip-compressed ``.seq.nrrd``
    Slicer opens as a volume sequence and :func:`read_label_masks` reads back; atomic."""
    from lungus.io import Clip, write_clip

    if masks.ndim != 3 or masks.dtype != np.uint8:
        raise ValueError(f"masks must be uint8 (T, H, W), got {masks.dtype} {masks.shape}")
    return write_clip(
        Clip(frames=masks, fps=fps, spacing_mm=spacing_mm, meta={"labels": "lungus classes"}),
        path,
        compression="gzip",
    )
