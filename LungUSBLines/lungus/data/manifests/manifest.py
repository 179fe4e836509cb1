"""The manifest: a CSV listing clips, patients and labels (docs/architecture.md#manifest).

Columns (paths are relative to the CSV's own folder):

- ``clip`` (required): clip file or frame folder;
- ``patient`` (required): patient id; folds never split a patient;
- ``zone`` (optional): free text;
- ``bline2`` / ``bline3`` / ``lus4``: reference labels in that scheme;
- ``crowd_none``, ``crowd_discrete``, ``crowd_confluent``: bline3 crowd opinion counts;
- ``expert_<name>``: one expert's labels (any scheme; the values say which);
- ``truth_<scheme>``: simulator ground truth;
- ``fold``: integer >= 0;
- ``train_only`` (optional): ``yes`` marks a clip that only trains: it is in the training set of
  every fold and never held out, validated or scored (simulated clips with dense truth beside
  real clips, `lungus merge --train-only`); blank or ``no`` otherwise;
- ``mask`` (optional): per-frame segmentation mask file (class ids of
  docs/architecture.md#segmentation-classes);
- ``annotation_spacing_mm`` (optional): the pixel spacing AnnotateUltrasound points are read with
  where the clip does not carry it (lungus.data.labels.annotation_geometry).

Other columns are kept as they are. Line numbers in messages count the header as
line 1, as a text editor does.

This module is the table: rows, paths, columns, folds, and (lungus.data.manifests.validation) the
checks of the CSV. The labels its columns give (crowd, experts, truth, soft labels) come from
lungus.data.manifests.label_sources.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from lungus.data.csvfile import read_csv_table, write_csv_table
from lungus.data.labels.opinions import clip_key
from lungus.data.labels.schemes import CROWD_COLUMNS, LABEL_SCHEMES
from lungus.errors import LungUSError

REQUIRED_COLUMNS = ("clip", "patient")
# Columns holding paths relative to the manifest's folder (mask: the simulator's per-frame class masks).
PATH_COLUMNS = ("clip", "mask")
#: Longest file name and path the operating systems in use accept (Linux NAME_MAX, PATH_MAX);
#: a longer path in a manifest cannot name a file and is refused before it reaches the OS.
MAX_NAME_CHARS = 255
MAX_PATH_CHARS = 4096
#: Largest opinion count per class and clip: far above any real crowd, and small enough
#: that sums over a collection stay exact in 64-bit integers.
MAX_OPINION_COUNT = 10**9
SCHEME_COLUMNS = tuple(LABEL_SCHEMES)  # bline2, bline3, lus4
EXPERT_PREFIX = "expert_"
TRAIN_ONLY_COLUMN = "train_only"
_TRAIN_ONLY_VALUES = {"yes": True, "no": False, "": False}
Location = TypeVar("Location")  # where a clip is listed: a line number, a "file:line"
TRUTH_PREFIX = "truth_"
# Order of the standard columns when a manifest is written from scratch.
CANONICAL_ORDER = ("clip", "patient", "zone", *SCHEME_COLUMNS, *CROWD_COLUMNS)
@dataclass(frozen=True)
class ManifestIssue:
    """One validation finding. ``line`` is the file line (header = 1), None for a whole-column issue."""

    severity: str  # "error" or "warning"
    line: int | None
    column: str | None
    message: str
    file: str | None = None  # set when the issue is in another file (the opinions file)

    def format(self, path: str | os.PathLike | None = None) -> str:
        """``path:line: severity: column C: message`` (path: the issue's own file, else ``path``)."""
        where = self.file or ("" if path is None else os.fspath(path))
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        column = f"column {self.column}: " if self.column else ""
        return (
            f"{where}: {self.severity}: {column}{self.message}"
            if where
            else f"{self.severity}: {column}{self.message}"
        )

    def as_dict(self) -> dict:
        found = {"severity": self.severity, "line": self.line, "column": self.column, "message": self.message}
        if self.file:
            found["file"] = self.file
        return found


def parse_int(text: str) -> int | None:
    """An integer written as '3' or '3.0'; None if blank; ValueError otherwise."""
    text = text.strip()
    if not text:
        return None
    number = float(text)
    if not np.isfinite(number) or not number.is_integer():
        raise ValueError(text)
    return int(number)


def train_only_flag(text: str) -> bool | None:
    """A ``train_only`` field: True for yes, False for no or blank, None for anything else."""
    return _TRAIN_ONLY_VALUES.get(text.strip().lower())


def patients_train_only_and_scored(
        clips: Iterable[tuple[str, bool, Location]]) -> list[tuple[str, Location, Location]]:
    """Patients with train-only and scored clips, whose train-only clips would train the models
    that score them: (patient, where its first train-only clip is, where its first scored clip is),
    in the order the scored clips come. ``clips`` gives (patient, train-only?, where) per clip."""
    first: tuple[dict[str, Location], dict[str, Location]] = ({}, {})  # scored, train-only
    for patient, train_only, where in clips:
        if patient:
            first[train_only].setdefault(patient, where)
    scored, train_only_first = first
    return [(patient, train_only_first[patient], where) for patient, where in scored.items()
            if patient in train_only_first]


class Manifest:
    """A manifest in memory: its path, columns and rows of strings.

    Load with :meth:`load` (lenient: structural problems become validation issues);
    check with :meth:`validate`; write with :meth:`save` (atomic).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        columns: Sequence[str],
        rows: Sequence[dict[str, str]],
        lines: Sequence[int] | None = None,
        field_counts: Sequence[int] | None = None,
    ) -> None:
        self.path = Path(path)
        self.columns = list(columns)
        self.rows = [dict(row) for row in rows]
        for row in self.rows:
            for name in self.columns:
                row.setdefault(name, "")
        # File line of each row (for messages) and how many fields it had (ragged rows are errors).
        self.lines = list(lines) if lines is not None else list(range(2, len(self.rows) + 2))
        self.field_counts = (
            list(field_counts) if field_counts is not None else [len(self.columns)] * len(self.rows)
        )

    # ---- reading and writing -------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike, *, confine_paths: bool = False) -> Manifest:
        """Read a manifest CSV. LungUSError (one line) if the file is missing or not a readable CSV,
        and with ``confine_paths`` if a path leaves the manifest's folder (:meth:`check_confined`)."""
        header, table = read_csv_table(path, "manifest")
        rows, lines, counts = [], [], []
        for line, fields in table:
            padded = [field.strip() for field in fields] + [""] * (len(header) - len(fields))
            rows.append(dict(zip(header, padded)))
            lines.append(line)
            counts.append(len(fields))
        manifest = cls(path, header, rows, lines, counts)
        if confine_paths:
            manifest.check_confined()
        return manifest

    @classmethod
    def from_rows(cls, path: str | os.PathLike, rows: Sequence[dict[str, object]]) -> Manifest:
        """A new manifest from dicts (e.g. the simulator's); standard columns first, in contract order."""
        names: list[str] = []
        for row in rows:
            names.extend(name for name in row if name not in names)
        experts = sorted(n for n in names if n.startswith(EXPERT_PREFIX))
        truths = sorted(n for n in names if n.startswith(TRUTH_PREFIX))
        ordered = [n for n in CANONICAL_ORDER if n in names] + experts + truths
        ordered += [n for n in names if n not in ordered and n != "fold"] + (
            ["fold"] if "fold" in names else []
        )
        text_rows = [
            {name: "" if row.get(name) is None else str(row.get(name)) for name in ordered} for row in rows
        ]
        return cls(path, ordered, text_rows)

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the CSV atomically to ``path`` (default: where it was loaded from).

        Saving into another folder rewrites relative clip paths so they still point at
        the same files (paths are relative to the manifest's folder); the manifest in
        memory then belongs to the new path.
        """
        target = Path(path) if path is not None else self.path
        if target.parent.resolve() != self.folder.resolve():
            self.rows = self.rows_relative_to(target.parent)
        self.path = target
        return write_csv_table(
            target, self.columns, ([row.get(name, "") for name in self.columns] for row in self.rows)
        )

    def rows_relative_to(self, folder: str | os.PathLike) -> list[dict[str, str]]:
        """Copies of the rows whose relative clip and mask paths name the same files from ``folder``."""
        base = Path(folder).resolve()
        columns = [name for name in PATH_COLUMNS if name in self.columns]
        moved_rows = []
        for i, row in enumerate(self.rows):
            moved = dict(row)
            for column in columns:
                if row[column] and not Path(row[column]).is_absolute():
                    moved[column] = Path(os.path.relpath(self.resolve(i, column), base)).as_posix()
            moved_rows.append(moved)
        return moved_rows

    # ---- plain access --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.rows)

    @property
    def folder(self) -> Path:
        return self.path.parent

    def column(self, name: str) -> list[str]:
        if name not in self.columns:
            raise LungUSError(f"no column {name!r} (columns: {', '.join(self.columns)})", self.path)
        return [row[name] for row in self.rows]

    def set_column(self, name: str, values: Sequence[object]) -> None:
        """Add or replace a column (appended at the end if new)."""
        if len(values) != len(self.rows):
            raise ValueError(f"column {name!r} needs {len(self.rows)} values, got {len(values)}")
        if name not in self.columns:
            self.columns.append(name)
        for row, value in zip(self.rows, values):
            row[name] = "" if value is None else str(value)

    def require_columns(self, *names: str) -> None:
        missing = [name for name in names if name not in self.columns]
        if missing:
            raise LungUSError(f"line 1: missing required column {', '.join(missing)}", self.path)

    @property
    def clips(self) -> list[str]:
        self.require_columns("clip")
        return self.column("clip")

    @property
    def patients(self) -> list[str]:
        self.require_columns("patient")
        return self.column("patient")

    def resolve(self, index: int, column: str = "clip") -> Path | None:
        """A path column (clip, mask) of one row resolved against the manifest's folder; None if blank."""
        text = self.rows[index].get(column, "").replace("\\", "/")
        if not text:
            return None
        longest = max(len(os.fsencode(part)) for part in text.split("/"))
        if longest > MAX_NAME_CHARS or len(os.fsencode(text)) > MAX_PATH_CHARS:
            raise LungUSError(
                f"line {self.lines[index]}: column {column}: a path of {len(text)} characters (one name "
                f"{longest} long) is longer than file systems allow ({MAX_NAME_CHARS} per name, "
                f"{MAX_PATH_CHARS} in all)",
                self.path,
            )
        return Path(os.path.normpath(self.folder.resolve() / text))

    def check_confined(self) -> None:
        """LungUSError naming the first line whose clip or mask path leads outside the manifest's
        folder once symbolic links are followed (``../``, an absolute path elsewhere, a link
        pointing out). Such paths are fine in one's own manifests; refuse them in manifests from
        others (docs/manifest-paths.md)."""
        inside = self.folder.resolve()
        columns = [name for name in PATH_COLUMNS if name in self.columns]
        for index, row in enumerate(self.rows):
            for column in columns:
                path = self.resolve(index, column)
                if path is not None and not path.resolve().is_relative_to(inside):
                    raise LungUSError(
                        f"line {self.lines[index]}: column {column}: {row[column]!r} leads outside the "
                        f"manifest's folder {inside} (refused by --confine-paths)",
                        self.path,
                    )

    def clip_path(self, index: int) -> Path:
        """Clip location: the clip column resolved against the manifest's folder (absolute, normalised)."""
        path = self.resolve(index, "clip")
        if path is None:
            raise LungUSError(f"line {self.lines[index]}: column clip: blank clip path", self.path)
        return path

    def clip_paths(self) -> list[Path]:
        return [self.clip_path(i) for i in range(len(self.rows))]

    def folds(self) -> list[int | None]:
        """Fold per row (None where blank or absent); LungUSError on a non-integer."""
        if "fold" not in self.columns:
            return [None] * len(self.rows)
        folds = []
        for row, line in zip(self.rows, self.lines):
            try:
                folds.append(parse_int(row["fold"]))
            except ValueError:
                raise LungUSError(
                    f"line {line}: column fold: {row['fold']!r} is not an integer", self.path
                ) from None
        return folds

    def train_only(self) -> list[bool]:
        """Per row: whether the clip only trains (``train_only`` = yes): it is in every fold's training
        set and never held out, validated or scored. LungUSError on a value other than yes/no/blank."""
        if TRAIN_ONLY_COLUMN not in self.columns:
            return [False] * len(self.rows)
        flags = []
        for row, line in zip(self.rows, self.lines):
            flag = train_only_flag(row[TRAIN_ONLY_COLUMN])
            if flag is None:
                raise LungUSError(f"line {line}: column {TRAIN_ONLY_COLUMN}: {row[TRAIN_ONLY_COLUMN]!r} is not "
                                  "yes, no or blank", self.path)
            flags.append(flag)
        return flags

    def scored_rows(self) -> list[int]:
        """The rows that can be held out, validated and scored: all but the train-only ones."""
        return [r for r, only in enumerate(self.train_only()) if not only]

    @property
    def expert_names(self) -> list[str]:
        return [name[len(EXPERT_PREFIX) :] for name in self.columns if name.startswith(EXPERT_PREFIX)]

    @property
    def has_crowd_counts(self) -> bool:
        return all(name in self.columns for name in CROWD_COLUMNS)



__all__ = [
    "CANONICAL_ORDER",
    "EXPERT_PREFIX",
    "Manifest",
    "ManifestIssue",
    "REQUIRED_COLUMNS",
    "TRUTH_PREFIX",
    "clip_key",
]
