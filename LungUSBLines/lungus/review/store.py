"""A review folder: reviewers' verdicts on clips and their corrected masks, kept as training data.

Layout (docs/review.md#review-folder)::

    REVIEWS/history.jsonl        every verdict and every mask save, one JSON object a line, in order
    REVIEWS/manifest.csv         one row per clip, rebuilt from the history after each append
    REVIEWS/masks/<stem>.seq.nrrd  the clip's corrected masks (latest save), 255 on frames nobody reviewed

**The history is the record.** Each verdict or mask save is appended to ``history.jsonl`` as
one line, whole and synced to the disk (lungus.atomic.append_whole), under the folder's lock
(lungus.folder_lock). Appending never rewrites a byte already written, so no crash can damage
an earlier review; the worst a crash can leave is the line being appended, torn (the process
killed mid-write). The reader skips a last line without its newline, and the next append cuts
it off first. Rewriting the whole history to a temporary file and renaming it would be as
safe, but costs a copy of every earlier review per verdict.

**The manifest follows.** ``manifest.csv`` (docs/architecture.md#manifest; paths relative to
the folder) is rewritten atomically from the history after each append, so a crash between the
two leaves a stale manifest, never a lost review: opening the folder rebuilds a manifest that is
missing or differs from the history. Per clip: ``expert_<reviewer>`` holds each reviewer's latest
label; ``model_label``, ``model_probability``, ``reviewer``, ``reviewed_at``, ``comment`` and
``scheme`` come from the clip's latest verdict; ``patient`` and ``zone`` are the latest given
(``patient`` defaults to the clip's file stem, each clip its own patient); ``mask`` is the
corrected-masks file, once one was saved.

One folder holds one labelling scheme (the first verdict's), so every ``expert_<reviewer>``
column is a label column of that scheme, as ``lungus validate`` and ``lungus train`` require.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from lungus.atomic import append_whole, cut_torn_tail, output_errors
from lungus.data.csvfile import csv_cell, read_csv_table, write_records_csv
from lungus.data.labels.annotation_labels import IGNORE_INDEX, labelled_frames
from lungus.data.labels.label_images import MASK_SUFFIX
from lungus.data.labels.opinions import clip_key
from lungus.data.labels.schemes import LABEL_SCHEMES, SEG_CLASSES, normalise_label
from lungus.data.labels.tasks import CLASSIFICATION_TASKS
from lungus.data.manifests.manifest import EXPERT_PREFIX
from lungus.errors import LungUSError, error_detail
from lungus.folder_lock import exclusive_folder
from lungus.io.formats import file_stem
from lungus.timestamps import utc_now

REVIEW_MANIFEST = "manifest.csv"
REVIEW_HISTORY = "history.jsonl"
MASKS_FOLDER = "masks"
LOCK = ".lungus-review.lock"
#: A reviewer's name becomes the manifest column ``expert_<name>`` and the label source ``expert:<name>``.
REVIEWER_NAME = re.compile(r"[A-Za-z0-9_-]+")
VERDICT, MASKS = "verdict", "masks"
#: Manifest columns before and after the reviewers' ``expert_<name>`` columns.
LEADING_COLUMNS = ("clip", "patient", "zone")
TRAILING_COLUMNS = ("model_label", "model_probability", "reviewer", "reviewed_at", "comment", "mask", "scheme")


@dataclass(frozen=True)
class Verdict:
    """One reviewer's label for one clip.

    ``clip``: the clip file (absolute in what :class:`ReviewFolder` returns; stored relative to
    the review folder). ``scheme``: the model's task (bline2, bline3, lus4); ``label`` and
    ``model_label`` are classes of it. ``patient`` None: the clip's file stem. ``time``: ISO 8601
    UTC; :meth:`ReviewFolder.record` fills it when empty.
    """

    clip: str
    reviewer: str
    scheme: str
    label: str
    model_label: str | None = None
    model_probability: float | None = None
    patient: str | None = None
    zone: str | None = None
    comment: str = ""
    time: str = ""

    @property
    def agreed(self) -> bool:
        """Whether the reviewer kept the model's label."""
        if self.model_label is None:
            return False
        try:
            return normalise_label(self.scheme, self.label) == normalise_label(self.scheme, self.model_label)
        except ValueError:
            return False


@dataclass(frozen=True)
class MaskSave:
    """The latest corrected masks of a clip: ``path`` (absolute) holds them, ``reviewed_frames``
    are the frames that are not all 255."""

    clip: str
    reviewer: str
    path: Path
    reviewed_frames: tuple[int, ...]
    time: str


def check_reviewer(name: object, where: str | os.PathLike | None = None) -> str:
    """``name`` if it can name a manifest column ``expert_<name>``; LungUSError otherwise."""
    if not isinstance(name, str) or not REVIEWER_NAME.fullmatch(name):
        raise LungUSError(
            f"reviewer name {name!r} must be letters, digits, '-' or '_' (it becomes the manifest column "
            f"expert_<name>); choose such a name",
            where,
        )
    return name


class ReviewFolder:
    """A folder of reviews (the module docstring): :meth:`record` verdicts, :meth:`save_masks`."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(os.path.abspath(os.path.expanduser(os.fspath(folder))))
        if self.folder.exists() and not self.folder.is_dir():
            raise LungUSError("not a folder; choose a folder for the reviews", self.folder)
        with output_errors(self.folder):
            self.folder.mkdir(parents=True, exist_ok=True)
        self.manifest_path = self.folder / REVIEW_MANIFEST
        self.history_path = self.folder / REVIEW_HISTORY
        self.masks_folder = self.folder / MASKS_FOLDER
        records = self._read_history()
        if records and not self._manifest_is_current(records):
            with self._lock():
                self._write_manifest(self._read_history())

    # ------------------------------------------------------------------ public

    def record(self, verdict: Verdict) -> Verdict:
        """Append ``verdict`` to the history (whole, synced) and rebuild the manifest; returns
        the verdict as stored (labels in their canonical spelling, clip absolute, time filled).
        Bad names, schemes or labels: a one-line LungUSError, and nothing is written."""
        checked = self._checked(verdict)
        with self._lock():
            records = self._read_history()
            schemes = {record["scheme"] for record in records if record["kind"] == VERDICT}
            if schemes and checked.scheme not in schemes:
                raise LungUSError(
                    f"this review folder holds {', '.join(sorted(schemes))} reviews; record {checked.scheme} "
                    "labels in another review folder (one scheme per folder, so each expert_<reviewer> "
                    "column holds one scheme)",
                    self.folder,
                )
            entry = {"kind": VERDICT, **asdict(checked), "clip": self._relative(checked.clip)}
            self._append(entry)
            self._write_manifest([*records, entry])
        return checked

    def save_masks(
        self,
        clip: str | os.PathLike,
        reviewer: str,
        masks: np.ndarray,
        *,
        spacing_mm: tuple[float, float] | None = None,
        fps: float | None = None,
    ) -> Path:
        """Write the clip's corrected masks to ``masks/<clip stem>.seq.nrrd`` (atomic) and record
        the save; the manifest's ``mask`` column points at it.

        ``masks``: uint8 (T, H, W) like the clip's frames: class ids
        (docs/architecture.md#segmentation-classes) on reviewed frames, 255 (IGNORE_INDEX) on
        every pixel of frames nobody reviewed. ``spacing_mm`` and ``fps`` default to the clip's.
        """
        from lungus.data.labels.label_images import check_unlabelled_frames, write_label_masks
        from lungus.io import read_clip

        check_reviewer(reviewer, self.folder)
        clip_path = self._clip(clip)
        masks = np.asarray(masks)
        if masks.dtype != np.uint8 or masks.ndim != 3:
            raise LungUSError(f"masks must be uint8 (frames, rows, columns), got {masks.dtype} {masks.shape}",
                              clip_path)
        values = {int(value) for value in np.unique(masks)}
        unknown = sorted(values - {seg_class.id for seg_class in SEG_CLASSES} - {IGNORE_INDEX})
        if unknown:
            raise LungUSError(
                f"masks hold values {unknown[:5]} that are neither class ids "
                f"(docs/architecture.md#segmentation-classes) nor {IGNORE_INDEX} (frame not reviewed)",
                clip_path,
            )
        check_unlabelled_frames(masks, clip_path)
        frames = read_clip(clip_path, fan=False)
        if masks.shape != frames.frames.shape:
            raise LungUSError(
                f"masks are {'x'.join(map(str, masks.shape))} (frames x rows x columns) but the clip is "
                f"{'x'.join(map(str, frames.frames.shape))}",
                clip_path,
            )
        with self._lock():
            records = self._read_history()
            relative = self._relative(clip_path)
            mask_relative = self._mask_name(records, relative)
            write_label_masks(
                self.folder / mask_relative,
                masks,
                fps=fps if fps is not None else frames.fps,
                spacing_mm=spacing_mm if spacing_mm is not None else frames.spacing_mm,
            )
            reviewed = np.flatnonzero(labelled_frames(masks))
            entry = {
                "kind": MASKS,
                "clip": relative,
                "reviewer": reviewer,
                "mask": mask_relative,
                "frames": int(masks.shape[0]),
                "reviewed_frames": [int(t) for t in reviewed],
                "time": utc_now(),
            }
            self._append(entry)
            self._write_manifest([*records, entry])
        return self.folder / mask_relative

    def history(self, clip: str | os.PathLike | None = None) -> list[Verdict]:
        """Every verdict recorded here (or on ``clip``), oldest first, re-reviews included."""
        wanted = None if clip is None else clip_key(self._relative(os.path.abspath(os.fspath(clip))))
        verdicts = []
        for record in self._read_history():
            if record["kind"] != VERDICT or (wanted is not None and clip_key(record["clip"]) != wanted):
                continue
            values = {field.name: record.get(field.name) for field in fields(Verdict) if field.name in record}
            verdicts.append(Verdict(**{**values, "clip": self._absolute(record["clip"])}))
        return verdicts

    def corrected_masks(self) -> list[MaskSave]:
        """Each clip's latest mask save, in the order the clips were first saved."""
        latest: dict[str, MaskSave] = {}
        for record in self._read_history():
            if record["kind"] == MASKS:
                latest[clip_key(record["clip"])] = MaskSave(
                    self._absolute(record["clip"]), record["reviewer"], self.folder / record["mask"],
                    tuple(int(t) for t in record.get("reviewed_frames") or ()), record.get("time", ""))
        return list(latest.values())

    def rows(self) -> list[dict[str, str]]:
        """The manifest's rows as written (column -> text); [] before the first review."""
        if not self.manifest_path.is_file():
            return []
        header, rows = read_csv_table(self.manifest_path, "review manifest")
        return [dict(zip(header, fields_ + [""] * (len(header) - len(fields_)))) for _, fields_ in rows]

    # ------------------------------------------------------------------ checks

    def _checked(self, verdict: Verdict) -> Verdict:
        check_reviewer(verdict.reviewer, self.folder)
        if verdict.scheme not in CLASSIFICATION_TASKS:
            raise LungUSError(
                f"scheme {verdict.scheme!r} is not a clip label scheme; use the model's task: "
                f"{', '.join(CLASSIFICATION_TASKS)}",
                self.folder,
            )
        label = self._label(verdict.scheme, verdict.label, "label")
        if label is None:
            raise LungUSError(f"the verdict has no label; choose one of {', '.join(LABEL_SCHEMES[verdict.scheme])}",
                              self.folder)
        model_label = None if verdict.model_label is None else self._label(verdict.scheme, verdict.model_label,
                                                                           "model label")
        probability = verdict.model_probability
        if probability is not None:
            try:
                probability = float(probability)
            except (TypeError, ValueError):
                probability = math.nan
            if not 0.0 <= probability <= 1.0:
                raise LungUSError(f"model probability {verdict.model_probability!r} is not a number from 0 to 1",
                                  self.folder)
        texts = {}
        for name in ("patient", "zone", "comment", "time"):
            value = getattr(verdict, name)
            if value is not None and not isinstance(value, str):
                raise LungUSError(f"the verdict's {name} must be text, got {type(value).__name__}", self.folder)
            texts[name] = value.strip() if isinstance(value, str) else value
        if texts["patient"] == "":
            texts["patient"] = None
        if texts["zone"] == "":
            texts["zone"] = None
        if texts["time"]:
            try:
                datetime.datetime.fromisoformat(texts["time"])
            except ValueError:
                raise LungUSError(f"time {texts['time']!r} is not ISO 8601 (e.g. 2025-01-31T12:00:00Z); "
                                  "leave it empty for now", self.folder) from None
        else:
            texts["time"] = utc_now()
        return replace(verdict, clip=os.fspath(self._clip(verdict.clip)), label=label, model_label=model_label,
                       model_probability=probability, comment=texts["comment"] or "", patient=texts["patient"],
                       zone=texts["zone"], time=texts["time"])

    def _label(self, scheme: str, value: object, what: str) -> str | None:
        try:
            return normalise_label(scheme, value)
        except ValueError:
            raise LungUSError(
                f"{what} {value!r} is not a {scheme} class; choose one of {', '.join(LABEL_SCHEMES[scheme])}",
                self.folder,
            ) from None

    def _clip(self, clip: str | os.PathLike) -> Path:
        if not isinstance(clip, (str, os.PathLike)) or not os.fspath(clip).strip():
            raise LungUSError(f"the clip must be a file path, got {clip!r}", self.folder)
        path = Path(os.path.abspath(os.path.expanduser(os.fspath(clip))))
        if not path.exists():
            raise LungUSError("clip not found; a review names an existing clip file or frame folder", path)
        return path

    # ------------------------------------------------------------------ paths

    def _relative(self, clip: str | os.PathLike) -> str:
        """A clip's path as the manifest and history store it: relative to the folder, forward slashes."""
        try:
            text = os.path.relpath(os.fspath(clip), self.folder)
        except ValueError:  # Windows: another drive has no relative path
            text = os.fspath(clip)
        return text.replace(os.sep, "/")

    def _absolute(self, stored: str) -> str:
        return os.path.normpath(os.path.join(self.folder, stored))

    def _mask_name(self, records: list[dict[str, Any]], relative: str) -> str:
        """The clip's masks file, relative to the folder: the one it already has, else
        masks/<stem>.seq.nrrd, with _2, _3, ... when another clip has that name."""
        taken: dict[str, str] = {}
        for record in records:
            if record["kind"] == MASKS:
                taken.setdefault(clip_key(record["clip"]), record["mask"])
        if clip_key(relative) in taken:
            return taken[clip_key(relative)]
        used = {name.lower() for name in taken.values()}
        stem, number = file_stem(relative), 1
        name = f"{MASKS_FOLDER}/{stem}{MASK_SUFFIX}"
        while name.lower() in used:
            number += 1
            name = f"{MASKS_FOLDER}/{stem}_{number}{MASK_SUFFIX}"
        return name

    # ------------------------------------------------------------------ history and manifest

    def _lock(self):
        return exclusive_folder(self.folder, "review", LOCK)

    def _append(self, entry: dict[str, Any]) -> None:
        cut_torn_tail(self.history_path)  # a line a killed writer left half-written
        append_whole(self.history_path, (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8"))

    def _read_history(self) -> list[dict[str, Any]]:
        """The history's records; a last line without its newline (torn by a crash) is skipped."""
        try:
            data = self.history_path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as error:
            raise LungUSError(f"cannot read the review history ({error.strerror or error})", self.history_path) from None
        records = []
        for number, line in enumerate(data.split(b"\n")[:-1], start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as error:
                record = error_detail(error)
            if not isinstance(record, dict) or record.get("kind") not in (VERDICT, MASKS) or "clip" not in record:
                raise LungUSError(
                    f"line {number} is not a review record ({record if isinstance(record, str) else 'unknown kind'}); "
                    "restore the file from a backup or remove that line",
                    self.history_path,
                )
            records.append(record)
        return records

    def _manifest_table(self, records: Iterable[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
        rows: dict[str, dict[str, Any]] = {}
        reviewers: dict[str, None] = {}
        for record in records:
            key = clip_key(record["clip"])
            row = rows.setdefault(key, {"clip": record["clip"], "patient": file_stem(record["clip"])})
            if record["kind"] == MASKS:
                row["mask"] = record["mask"]
                continue
            reviewers.setdefault(record["reviewer"])
            row[EXPERT_PREFIX + record["reviewer"]] = record["label"]
            for column in ("patient", "zone"):
                if record.get(column):
                    row[column] = record[column]
            row.update(model_label=record.get("model_label"), model_probability=record.get("model_probability"),
                       reviewer=record["reviewer"], reviewed_at=record.get("time"), comment=record.get("comment"),
                       scheme=record["scheme"])
        columns = [*LEADING_COLUMNS, *(EXPERT_PREFIX + name for name in reviewers), *TRAILING_COLUMNS]
        return columns, list(rows.values())

    def _manifest_is_current(self, records: list[dict[str, Any]]) -> bool:
        columns, table = self._manifest_table(records)
        try:
            written = self.rows()
        except LungUSError:
            return False
        if not self.manifest_path.is_file() or len(written) != len(table) or (written and list(written[0]) != columns):
            return False
        return all(
            row.get(column, "") == csv_cell(expected.get(column)) for row, expected in zip(written, table)
            for column in columns
        )

    def _write_manifest(self, records: list[dict[str, Any]]) -> None:
        columns, table = self._manifest_table(records)
        if table:
            write_records_csv(self.manifest_path, columns, table)
