"""Labels per frame, for frame-level classifiers (docs/frame-fusion.md#frame-labels).

Two sources: a frames manifest, a CSV with one row per labelled frame and columns
``clip, frame, label`` (``clip`` as in the clip manifest, ``frame`` the 0-based frame index,
``label`` a value of the task's scheme); or the clip's class masks, where a frame has B-lines
when any pixel of it is a B-line or confluent B-line (a frame nobody annotated, all
``IGNORE_INDEX``, has no label).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lungus.data.csvfile import read_csv_table
from lungus.data.labels.annotation_labels import IGNORE_INDEX
from lungus.data.labels.opinions import clip_key
from lungus.data.labels.schemes import SEG_CLASS_IDS, normalise_label, scheme_classes
from lungus.errors import LungUSError

FRAME_COLUMNS = ("clip", "frame", "label")
#: The mask classes that make a frame a B-line frame.
BLINE_CLASS_IDS = (SEG_CLASS_IDS["B-line"], SEG_CLASS_IDS["confluent B-line"])
#: No label for this frame.
UNLABELLED = -1


def mask_frame_labels(masks: np.ndarray) -> np.ndarray:
    """(T,) bline2 class per frame of (T, H, W) class masks: 1 with any B-line pixel, 0 without,
    UNLABELLED for a frame nobody annotated."""
    has_blines = np.isin(masks, BLINE_CLASS_IDS).any(axis=(1, 2))
    unlabelled = (masks == IGNORE_INDEX).all(axis=(1, 2))
    return np.where(unlabelled, UNLABELLED, has_blines.astype(np.int64))


@dataclass
class FrameLabels:
    """A frames manifest read: class index per (clip key, frame)."""

    path: Path
    scheme: str
    labels: dict[str, dict[int, int]]

    @classmethod
    def load(cls, path: str | os.PathLike, scheme: str) -> FrameLabels:
        """Read ``clip, frame, label`` rows; LungUSError naming the line of a bad value or a frame given twice."""
        header, rows = read_csv_table(path, "frames manifest")
        missing = [name for name in FRAME_COLUMNS if name not in header]
        if missing:
            raise LungUSError(f"line 1: missing column {', '.join(missing)}; a frames manifest needs columns "
                              "clip,frame,label", path)
        index = [header.index(name) for name in FRAME_COLUMNS]
        classes = scheme_classes(scheme)
        labels: dict[str, dict[int, int]] = {}
        for line, fields in rows:
            clip, frame, label = ((fields[i] if i < len(fields) else "").strip() for i in index)
            try:
                number = int(frame)
            except ValueError:
                number = -1
            if number < 0:
                raise LungUSError(f"line {line}: column frame: {frame!r} is not a frame index (0, 1, ...)", path)
            try:
                name = normalise_label(scheme, label)
            except ValueError as error:
                raise LungUSError(f"line {line}: column label: {error}", path) from None
            if name is None or not clip:
                raise LungUSError(f"line {line}: every row needs a clip and a label", path)
            frames = labels.setdefault(clip_key(clip), {})
            if number in frames:
                raise LungUSError(f"line {line}: frame {number} of {clip} is labelled twice", path)
            frames[number] = classes.index(name)
        return cls(Path(path), scheme, labels)

    def clip_labels(self, clip: str, source_frames: np.ndarray) -> np.ndarray:
        """(n,) class per prepared frame of one clip, UNLABELLED where the file has none;
        ``source_frames``: the original frame each prepared frame shows."""
        frames = self.labels.get(clip_key(clip), {})
        return np.array([frames.get(int(f), UNLABELLED) for f in source_frames], dtype=np.int64)
