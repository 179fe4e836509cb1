"""AnnotateUltrasound annotations (``<clip>.<rater>.json`` beside each clip) as segmentation labels.

Label sources (``lungus train --task seg --label-source ...``):

- ``annotations``: every rater's lines beside the clip, drawn as the module draws its
  overlay (lungus.data.labels.annotations) and fused pixel by pixel by majority vote
  (lungus.data.labels.fusion); one rater's file is used as it is;
- ``annotations-staple``: the same, fused by STAPLE;
- ``annotations:RATER``: only that rater's lines.

Frames no rater annotated are marked :data:`IGNORE_INDEX` (255): unknown, not "no
B-lines", so the loss skips them and evaluation does not score them. The module draws only
pleural lines and B-lines (confluent B-lines as wide B-lines), so the labels can show only
:data:`ANNOTATION_CLASSES`; A-lines and rib shadows are unlabelled, not background, and a
model trained on these labels is trained and run on those classes only
(lungus.train.losses.DiceCELoss ``label_classes``).

The fused masks are written once per clip (``.npy`` in the run's clip cache, keyed by the
clip and annotation files' paths, sizes and times), so the clip cache sees an ordinary mask
file and prepares frames and labels together, identically.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from lungus.atomic import atomic_path
from lungus.data.labels.schemes import B_LINE, BACKGROUND, PLEURA
from lungus.errors import LungUSError

#: Mask value of an unlabelled pixel (here: every pixel of a frame no rater annotated).
IGNORE_INDEX = 255
ANNOTATION_SOURCE = "annotations"
ANNOTATION_CLASSES = (BACKGROUND, PLEURA, B_LINE)
_VERSION = 2  # 2: points read with the clip's pixel-to-LPS transform


def parse_annotation_source(label_source: str | None) -> tuple[str | None, str] | None:
    """``(rater or None, fusion method)`` for an annotation label source, None for any other source."""
    if not label_source:
        return None
    text = label_source.strip()
    if text == ANNOTATION_SOURCE:
        return None, "majority"
    if text == f"{ANNOTATION_SOURCE}-staple":
        return None, "staple"
    if text.startswith(f"{ANNOTATION_SOURCE}:"):
        rater = text.split(":", 1)[1].strip().lower()
        if not rater:
            raise LungUSError(f"label source {label_source!r}: name the rater, as in annotations:tom")
        return rater, "majority"
    return None


def labelled_frames(masks: np.ndarray, region: np.ndarray | None = None) -> np.ndarray:
    """(T,) bool: frames with a labelled pixel inside ``region`` (H, W) (default: anywhere).

    Pass the fan: preparing a clip sets pixels outside the fan and the letterbox padding to
    background, so an unannotated frame is all IGNORE_INDEX only inside the fan.
    """
    known = masks != IGNORE_INDEX
    if region is not None:
        known = known & region[None].astype(bool)
    return known.any(axis=(1, 2))


def annotation_labels(by_rater: dict, method: str = "majority", rater: str | None = None) -> np.ndarray:
    """uint8 (T, H, W) labels from ``{rater: AnnotationMasks}``; unannotated frames are 255.

    ``rater`` picks one rater; otherwise several raters are fused with ``method``.
    """
    from lungus.data.labels.fusion import fuse_masks

    if rater is not None:
        if rater not in by_rater:
            raise LungUSError(f"no annotations by rater {rater!r} (found: {', '.join(sorted(by_rater)) or 'none'})")
        by_rater = {rater: by_rater[rater]}
    if not by_rater:
        raise LungUSError("no AnnotateUltrasound annotations")
    annotations = list(by_rater.values())
    if len(annotations) == 1:
        labels, annotated = annotations[0].masks.copy(), annotations[0].annotated
    else:
        fused = fuse_masks([a.masks for a in annotations], method, annotated=[a.annotated for a in annotations])
        labels, annotated = fused.labels, fused.annotated
    labels[~annotated] = IGNORE_INDEX
    return labels


def _stat_key(paths: list[Path]) -> list[str]:
    parts = []
    for path in paths:
        stat = path.stat()
        parts += [str(path.resolve()), str(stat.st_size), str(stat.st_mtime_ns)]
    return parts


def annotation_mask_file(clip_path: str | os.PathLike, folder: str | os.PathLike, *, rater: str | None = None,
                         method: str = "majority", spacing_mm: tuple[float, float] | None = None) -> Path:
    """A ``.npy`` of the clip's annotation labels (see :func:`annotation_labels`), written to
    ``folder`` unless an up-to-date one is there. The points are read with the clip's own
    pixel-to-LPS transform, else ``spacing_mm`` (the manifest's annotation_spacing_mm) or the
    sidecar's (lungus.data.labels.annotation_geometry). LungUSError when the clip has no
    annotations, or a frame's lines fall outside the fan."""
    from lungus.data.labels.annotation_geometry import annotation_geometry
    from lungus.data.labels.annotations import clip_annotation_masks, find_annotations
    from lungus.io.fan import fan_sidecar_path
    from lungus.io.reader import read_clip

    clip_path = Path(clip_path)
    files = find_annotations(clip_path)
    if not files:
        raise LungUSError("no AnnotateUltrasound annotations (<clip>.<rater>.json) beside the clip", clip_path)
    geometry = annotation_geometry(clip_path, spacing_mm)
    sidecar = fan_sidecar_path(clip_path)
    matrix = "identity" if geometry is None else np.array2string(geometry.ijk_to_lps, precision=9)
    stat_files = [clip_path, *files.values(), *([sidecar] if sidecar is not None else [])]
    key = hashlib.sha1("|".join([str(_VERSION), method, rater or "", matrix, *_stat_key(stat_files)])
                       .encode()).hexdigest()
    target = Path(folder) / f"annotations-{key}.npy"
    if target.is_file():
        return target
    clip = read_clip(clip_path)
    by_rater = clip_annotation_masks(clip_path, clip.frames.shape[1:3], clip.n_frames, clip.fan,
                                     ijk_to_lps=geometry)
    try:
        labels = annotation_labels(by_rater, method, rater)
    except LungUSError as error:
        raise LungUSError(error.problem, clip_path) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as temporary:
        with open(temporary, "wb") as handle:
            np.save(handle, labels)
    return target


def read_annotation_mask_file(path: str | os.PathLike) -> np.ndarray:
    return np.load(path, allow_pickle=False)
