"""What inference says about one clip, and its rows in clips.csv / frames.csv (docs/architecture.md#inference-outputs)."""

from __future__ import annotations

import json
import math
import os
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lungus.atomic import atomic_path
from lungus.data.labels.blines import CLIP_EVIDENCE
from lungus.data.pipeline.clip_preparation import Placement
from lungus.errors import LungUSError

#: clips.csv: these columns, with ``p_<class>`` for each classifier class after ``pred``.
CLIP_COLUMNS_HEAD = ("clip", "n_frames", "fps", "task", "pred")
CLIP_COLUMNS_TAIL = (
    *CLIP_EVIDENCE,
    "top_frame",
    "classifier",
    "segmenter",
    "error",
)
FRAME_COLUMNS = ("clip", "frame", "time_s", "p_blines", "bline_count", "blas")
#: Frames listed in a clip's record, most B-line evidence first.
TOP_FRAMES = 5


def clip_columns(class_names: list[str] | None) -> list[str]:
    """The clips.csv header for a classifier with these classes (None: no classifier)."""
    return [*CLIP_COLUMNS_HEAD, *(f"p_{name}" for name in class_names or ()), *CLIP_COLUMNS_TAIL]


def _number(value: Any, digits: int) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    value = float(value)
    return None if math.isnan(value) else round(value, digits)


@dataclass
class SegmentationOutput:
    """The segmenter's view of a clip, in model space (see ``placement`` to go back)."""

    masks: np.ndarray  # uint8 (F, h, w) class ids of the analysed frames
    source_frames: np.ndarray  # (F,) original frame each mask belongs to
    placement: Placement
    fan_mask: np.ndarray  # (h, w) bool, model space
    analysis: Any  # lungus.data.labels.blines.MaskAnalysis

    def original_masks(self, n_frames: int) -> np.ndarray:
        """uint8 (n_frames, H, W) masks in the original frame geometry; frames the segmenter
        skipped (frame-rate reduction) show the mask of the nearest analysed frame."""
        placed = np.stack([self.placement.to_original(m) for m in self.masks])
        return placed[nearest(self.source_frames, n_frames)]


def nearest(source_frames: np.ndarray, n_frames: int) -> np.ndarray:
    """For each original frame, the position in ``source_frames`` (sorted) of the nearest one."""
    frames = np.arange(n_frames)
    right = np.clip(np.searchsorted(source_frames, frames), 0, len(source_frames) - 1)
    left = np.clip(right - 1, 0, len(source_frames) - 1)
    closer_left = np.abs(source_frames[left] - frames) <= np.abs(source_frames[right] - frames)
    return np.where(closer_left, left, right)


@dataclass
class Explanation:
    """Where the classifier saw B-lines: maps in [0, 1] per analysed frame, in model space."""

    method: str  # gradcam, lime, cam or attention
    target_class: str
    maps: np.ndarray  # float32 (F, h, w)
    source_frames: np.ndarray  # (F,) original frame of each map
    placement: Placement
    fan_mask: np.ndarray  # (h, w) bool, model space

    def original_map(self, position: int) -> np.ndarray:
        """float32 (H, W) map of analysed frame ``position`` in the original geometry (0 outside the fan)."""
        import cv2

        return self.placement.to_original(
            np.where(self.fan_mask, self.maps[position], 0).astype(np.float32), interpolation=cv2.INTER_LINEAR
        )


@dataclass
class ClipAnalysis:
    """Per-clip and per-frame results for one clip.

    Per frame (original frame indices ``frames``): ``p_blines`` (the classifier's B-line
    evidence, P(not the first class), NaN where it did not look), ``bline_count`` and
    ``blas`` (from the segmenter's masks; -1 / None where it did not look), ``positions``
    (lateral B-line positions in ``position_unit``).
    """

    clip: str
    n_frames: int
    fps: float | None
    frames: np.ndarray  # (F,) original frame indices with results
    task: str | None = None
    class_names: list[str] | None = None
    probabilities: np.ndarray | None = None  # (K,), recalibrated if the classifier's card says so
    predicted_class: int | None = None  # decided at the card's threshold (None: the largest probability)
    p_blines: np.ndarray | None = None  # (F,) float, NaN where not analysed
    bline_count: np.ndarray | None = None  # (F,) int, -1 where not analysed
    blas: list[float | None] | None = None
    positions: list[tuple[float, ...]] | None = None
    position_unit: str | None = None
    segmentation: SegmentationOutput | None = None
    explanation: Explanation | None = None
    classifier: str = ""
    segmenter: str = ""
    fan: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ per clip
    @property
    def pred(self) -> str | None:
        if self.probabilities is None:
            return None
        if self.predicted_class is not None:
            return self.class_names[self.predicted_class]
        return self.class_names[int(np.argmax(self.probabilities))]

    def _seg_stat(self, name: str) -> Any:
        return None if self.segmentation is None else getattr(self.segmentation.analysis, name)

    @property
    def top_frame(self) -> int | None:
        """The frame to look at: the segmenter's (most B-lines, then highest BLAS), else the
        classifier's frame with the most B-line evidence."""
        if self.segmentation is not None:
            top = self.segmentation.analysis.top_frame
            if top is not None:
                return int(self.segmentation.source_frames[top])
        ranked = self.top_frames(1)
        return ranked[0][0] if ranked else None

    def top_frames(self, count: int = TOP_FRAMES) -> list[tuple[int, float]]:
        """(frame, p_blines) of the ``count`` frames with the most B-line evidence (ties: earlier first)."""
        if self.p_blines is None:
            return []
        valid = ~np.isnan(self.p_blines)
        order = np.lexsort((self.frames[valid], -self.p_blines[valid]))[:count]
        return [(int(self.frames[valid][i]), float(self.p_blines[valid][i])) for i in order]

    def clip_record(self) -> dict[str, Any]:
        """The clips.csv fields (plain Python values; None for empty cells)."""
        record: dict[str, Any] = {
            "clip": self.clip,
            "n_frames": self.n_frames,
            "fps": _number(self.fps, 4),
            "task": self.task,
            "pred": self.pred,
        }
        for name, p in zip(
            self.class_names or (), self.probabilities if self.probabilities is not None else ()
        ):
            record[f"p_{name}"] = _number(p, 4)
        record.update(
            {
                "bline_count_max": self._seg_stat("bline_count_max"),
                "bline_count_mean": _number(self._seg_stat("bline_count_mean"), 3),
                "frames_with_blines": self._seg_stat("frames_with_blines"),
                "blas_max": _number(self._seg_stat("blas_max"), 2),
                "blas_mean": _number(self._seg_stat("blas_mean"), 2),
                "top_frame": self.top_frame,
                "classifier": self.classifier,
                "segmenter": self.segmenter,
                "error": "",
            }
        )
        return record

    def frame_records(self) -> list[dict[str, Any]]:
        """The frames.csv rows, plus ``positions`` (JSON only)."""
        rows = []
        for i, frame in enumerate(self.frames):
            count = None if self.bline_count is None or self.bline_count[i] < 0 else int(self.bline_count[i])
            rows.append(
                {
                    "clip": self.clip,
                    "frame": int(frame),
                    "time_s": _number(frame / self.fps, 4) if self.fps else None,
                    "p_blines": None if self.p_blines is None else _number(self.p_blines[i], 4),
                    "bline_count": count,
                    "blas": None if self.blas is None else _number(self.blas[i], 2),
                    "positions": None
                    if self.positions is None or count is None
                    else [round(float(p), 2) for p in self.positions[i]],
                }
            )
        return rows

    def to_json(self) -> dict[str, Any]:
        """The clips.jsonl record: the clips.csv fields, the class distribution, the frames
        ranked by B-line evidence, the fan, and every frame's results."""
        record = self.clip_record()
        record["probabilities"] = (
            None
            if self.probabilities is None
            else {n: _number(p, 6) for n, p in zip(self.class_names, self.probabilities)}
        )
        record["top_frames"] = [{"frame": f, "p_blines": round(p, 4)} for f, p in self.top_frames()]
        record["position_unit"] = self.position_unit
        record["fan"] = self.fan
        record["frames"] = self.frame_records()
        record.update(self.extra)
        return record


# ---------------------------------------------------------------------------- analysis files
#: Version of the analysis file layout (write_analysis_file), checked when it is read back.
ANALYSIS_FILE_FORMAT = 1
_ANALYSIS_JSON = "analysis.json"


def _json_value(value: Any) -> Any:
    """numpy scalars and tuples as JSON values (json.dumps ``default``)."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _placement_json(placement: Placement) -> dict[str, Any]:
    return asdict(placement)


def _placement_from_json(record: dict[str, Any]) -> Placement:
    sector = record.get("sector")
    return Placement(
        crop=tuple(record["crop"]),
        scale=record["scale"],
        pad=tuple(record["pad"]),
        original_size=tuple(record["original_size"]),
        sector=None if sector is None else tuple(sector),
    )


def _tuples(rows: list | None) -> list[tuple] | None:
    return None if rows is None else [tuple(row) for row in rows]


def write_analysis_file(analysis: ClipAnalysis, path: str | os.PathLike) -> Path:
    """Write everything ``analysis`` holds to one .npz file (arrays as arrays, the rest as a
    JSON text entry; no pickles), complete or not at all. :func:`read_analysis_file` reads it
    back equal: this is how `lungus analyse` hands one clip's results to another process."""
    arrays: dict[str, np.ndarray] = {"frames": np.asarray(analysis.frames)}
    for name in ("probabilities", "p_blines", "bline_count"):
        if getattr(analysis, name) is not None:
            arrays[name] = np.asarray(getattr(analysis, name))
    record: dict[str, Any] = {
        "format": ANALYSIS_FILE_FORMAT,
        "clip": analysis.clip,
        "n_frames": analysis.n_frames,
        "fps": analysis.fps,
        "task": analysis.task,
        "class_names": analysis.class_names,
        "predicted_class": analysis.predicted_class,
        "blas": analysis.blas,
        "positions": analysis.positions,
        "position_unit": analysis.position_unit,
        "classifier": analysis.classifier,
        "segmenter": analysis.segmenter,
        "fan": analysis.fan,
        "extra": analysis.extra,
        "segmentation": None,
        "explanation": None,
    }
    seg = analysis.segmentation
    if seg is not None:
        masks = seg.analysis
        arrays.update(
            {
                "segmentation.masks": seg.masks,
                "segmentation.source_frames": seg.source_frames,
                "segmentation.fan_mask": seg.fan_mask,
                "segmentation.bline_count": masks.bline_count,
                "segmentation.confluent_share": masks.confluent_share,
                "segmentation.intercostal_extent": masks.intercostal_extent,
            }
        )
        record["segmentation"] = {
            "placement": _placement_json(seg.placement),
            "position_unit": masks.position_unit,
            "position_tolerance": masks.position_tolerance,
            "regions": [[asdict(region) for region in frame] for frame in masks.regions],
            "positions": masks.positions,
            "columns": masks.columns,
            "blas": masks.blas,
        }
    explanation = analysis.explanation
    if explanation is not None:
        arrays.update(
            {
                "explanation.maps": explanation.maps,
                "explanation.source_frames": explanation.source_frames,
                "explanation.fan_mask": explanation.fan_mask,
            }
        )
        record["explanation"] = {
            "method": explanation.method,
            "target_class": explanation.target_class,
            "placement": _placement_json(explanation.placement),
        }
    arrays[_ANALYSIS_JSON] = np.array(json.dumps(record, default=_json_value, ensure_ascii=False))
    with atomic_path(path) as temporary, open(temporary, "wb") as stream:
        np.savez(stream, **arrays)
    return Path(path)


def read_analysis_file(path: str | os.PathLike) -> ClipAnalysis:
    """The ClipAnalysis :func:`write_analysis_file` wrote to ``path``; LungUSError naming the
    file for anything else."""
    from lungus.data.labels.blines import BLineRegion, MaskAnalysis

    source = Path(path)
    if not source.is_file():
        raise LungUSError("no such analysis file", source)
    try:
        stored = np.load(source, allow_pickle=False)
        if not isinstance(stored, np.lib.npyio.NpzFile):
            raise LungUSError("not an analysis file (a single array, not an .npz archive)", source)
        with stored:
            arrays = {name: stored[name] for name in stored.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise LungUSError(f"not an analysis file ({error})", source) from None
    try:
        record = json.loads(str(arrays.pop(_ANALYSIS_JSON)))
        if record.get("format") != ANALYSIS_FILE_FORMAT:
            raise LungUSError(
                f"analysis file format {record.get('format')!r}, expected {ANALYSIS_FILE_FORMAT}", source
            )
        segmentation = explanation = None
        seg = record["segmentation"]
        if seg is not None:
            masks = MaskAnalysis(
                position_unit=seg["position_unit"],
                position_tolerance=seg["position_tolerance"],
                bline_count=arrays["segmentation.bline_count"],
                regions=[tuple(BLineRegion(**region) for region in frame) for frame in seg["regions"]],
                positions=_tuples(seg["positions"]),
                columns=_tuples(seg["columns"]),
                blas=seg["blas"],
                confluent_share=arrays["segmentation.confluent_share"],
                intercostal_extent=arrays["segmentation.intercostal_extent"],
            )
            segmentation = SegmentationOutput(
                masks=arrays["segmentation.masks"],
                source_frames=arrays["segmentation.source_frames"],
                placement=_placement_from_json(seg["placement"]),
                fan_mask=arrays["segmentation.fan_mask"],
                analysis=masks,
            )
        explained = record["explanation"]
        if explained is not None:
            explanation = Explanation(
                method=explained["method"],
                target_class=explained["target_class"],
                maps=arrays["explanation.maps"],
                source_frames=arrays["explanation.source_frames"],
                placement=_placement_from_json(explained["placement"]),
                fan_mask=arrays["explanation.fan_mask"],
            )
        return ClipAnalysis(
            clip=record["clip"],
            n_frames=record["n_frames"],
            fps=record["fps"],
            frames=arrays["frames"],
            task=record["task"],
            class_names=record["class_names"],
            probabilities=arrays.get("probabilities"),
            predicted_class=record.get("predicted_class"),
            p_blines=arrays.get("p_blines"),
            bline_count=arrays.get("bline_count"),
            blas=record["blas"],
            positions=_tuples(record["positions"]),
            position_unit=record["position_unit"],
            segmentation=segmentation,
            explanation=explanation,
            classifier=record["classifier"],
            segmenter=record["segmenter"],
            fan=record["fan"],
            extra=record["extra"],
        )
    except (KeyError, TypeError, ValueError) as error:
        raise LungUSError(f"not an analysis file (missing or malformed {error})", source) from None
