"""The manifest: a CSV listing clips, patients and labels (DESIGN.md section 3).

Columns (paths are relative to the CSV's own folder):

- ``clip`` (required): clip file or frame folder;
- ``patient`` (required): patient id; folds never split a patient;
- ``zone`` (optional): free text;
- ``bline2`` / ``bline3`` / ``lus4``: reference labels in that scheme;
- ``crowd_none``, ``crowd_discrete``, ``crowd_confluent``: bline3 crowd opinion counts;
- ``expert_<name>``: one expert's labels (any scheme; the values say which);
- ``truth_<scheme>``: simulator ground truth;
- ``fold``: integer >= 0;
- ``mask`` (optional): per-frame segmentation mask file (class ids of DESIGN.md).

Other columns are kept as they are. Line numbers in messages count the header as
line 1, as a text editor does.

Label sources (:meth:`Manifest.labels`): ``crowd-soft``, ``crowd-majority``,
``crowd-ds`` (needs long-format opinions), ``expert:NAME``, ``expert-majority``,
``truth`` and the plain scheme columns ``bline2`` / ``bline3`` / ``lus4``.
A bline2 label can always be derived from bline3 (none -> absent, discrete and
confluent -> present).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lungus.data.crowd import DawidSkeneResult, dawid_skene, majority_vote, soft_labels
from lungus.data.csvfile import read_csv_table, write_csv_table
from lungus.data.opinions import DEFAULT_OPINIONS_NAME, EncodedOpinions, Opinions, clip_key
from lungus.data.schemes import (
    BLINE3_TO_BLINE2,
    CROWD_COLUMNS,
    LABEL_SCHEMES,
    normalise_label,
    scheme_classes,
)
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
TRUTH_PREFIX = "truth_"
# Order of the standard columns when a manifest is written from scratch.
CANONICAL_ORDER = ("clip", "patient", "zone", *SCHEME_COLUMNS, *CROWD_COLUMNS)
CROWD_SOURCES = ("crowd-soft", "crowd-majority", "crowd-ds")

# Collapsing bline3 class indices onto bline2 ones.
_BLINE3_TO_BLINE2_INDEX = np.array(
    [LABEL_SCHEMES["bline2"].index(BLINE3_TO_BLINE2[name]) for name in LABEL_SCHEMES["bline3"]]
)


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


@dataclass
class LabelSet:
    """Labels of every manifest row from one source, in one scheme.

    hard: (N,) class index, -1 where the row has no label.
    soft: (N, K) class distribution (one-hot for hard sources), all-zero where no label.
    """

    source: str
    scheme: str
    classes: tuple[str, ...]
    hard: np.ndarray
    soft: np.ndarray
    is_soft: bool

    @property
    def mask(self) -> np.ndarray:
        return self.hard >= 0

    def names(self) -> list[str | None]:
        return [self.classes[k] if k >= 0 else None for k in self.hard.tolist()]


def _one_hot(hard: np.ndarray, n_classes: int) -> np.ndarray:
    soft = np.zeros((len(hard), n_classes))
    rows = np.flatnonzero(hard >= 0)
    soft[rows, hard[rows]] = 1.0
    return soft


def _collapse_to_bline2(values: np.ndarray) -> np.ndarray:
    """(N, 3) bline3 counts or probabilities -> (N, 2) bline2."""
    collapsed = np.zeros((len(values), len(LABEL_SCHEMES["bline2"])))
    for k3, k2 in enumerate(_BLINE3_TO_BLINE2_INDEX):
        collapsed[:, k2] += values[:, k3]
    return collapsed


def infer_column_scheme(values: Iterable[str]) -> str | None:
    """The scheme whose labels a column holds: the first of bline3, bline2 (words), lus4, bline2 (0/1).

    Blank values are ignored; None if no scheme accepts every value. bline2 written as
    0/1 is tried last because 0/1 are also LUS scores.
    """
    present = [v for v in values if v.strip()]

    def accepts(scheme: str, allowed: set[str] | None = None) -> bool:
        for value in present:
            if allowed is not None and value.strip().lower() not in allowed:
                return False
            try:
                normalise_label(scheme, value)
            except ValueError:
                return False
        return True

    if accepts("bline3"):
        return "bline3"
    if accepts("bline2", {"absent", "present", "yes", "no", "true", "false"}):
        return "bline2"
    if accepts("lus4"):
        return "lus4"
    if accepts("bline2"):
        return "bline2"
    return None


def parse_int(text: str) -> int | None:
    """An integer written as '3' or '3.0'; None if blank; ValueError otherwise."""
    text = text.strip()
    if not text:
        return None
    number = float(text)
    if not np.isfinite(number) or not number.is_integer():
        raise ValueError(text)
    return int(number)


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
            for column in (name for name in PATH_COLUMNS if name in self.columns):
                for i, row in enumerate(self.rows):
                    if row[column] and not Path(row[column]).is_absolute():
                        moved = os.path.relpath(self.resolve(i, column), target.parent.resolve())
                        row[column] = Path(moved).as_posix()
        self.path = target
        return write_csv_table(
            target, self.columns, ([row.get(name, "") for name in self.columns] for row in self.rows)
        )

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

    @property
    def expert_names(self) -> list[str]:
        return [name[len(EXPERT_PREFIX) :] for name in self.columns if name.startswith(EXPERT_PREFIX)]

    @property
    def has_crowd_counts(self) -> bool:
        return all(name in self.columns for name in CROWD_COLUMNS)

    def label_columns(self) -> dict[str, str | None]:
        """Column -> scheme for every label column (scheme columns, expert_*, truth_*); None if unknown."""
        found: dict[str, str | None] = {}
        for name in self.columns:
            if name in SCHEME_COLUMNS:
                found[name] = name
            elif name.startswith(TRUTH_PREFIX):
                scheme = name[len(TRUTH_PREFIX) :]
                found[name] = scheme if scheme in LABEL_SCHEMES else None
            elif name.startswith(EXPERT_PREFIX):
                found[name] = infer_column_scheme(self.column(name))
        return found

    def crowd_counts(self) -> np.ndarray:
        """(N, 3) int opinion counts (none, discrete, confluent); blank rows count zero."""
        self.require_columns(*CROWD_COLUMNS)
        counts = np.zeros((len(self.rows), len(CROWD_COLUMNS)), dtype=np.int64)
        for i, (row, line) in enumerate(zip(self.rows, self.lines)):
            for k, name in enumerate(CROWD_COLUMNS):
                try:
                    value = parse_int(row[name])
                except ValueError:
                    value = -1
                if value is not None and not 0 <= value <= MAX_OPINION_COUNT:
                    raise LungUSError(
                        f"line {line}: column {name}: {row[name][:40]!r} is not an integer count "
                        f"from 0 to {MAX_OPINION_COUNT:,}",
                        self.path,
                    )
                counts[i, k] = value or 0
        return counts

    def default_opinions_path(self) -> Path:
        return self.folder / DEFAULT_OPINIONS_NAME

    def load_opinions(self, opinions: str | os.PathLike | Opinions | None = None) -> Opinions | None:
        """The given opinions, or DIR/opinions.csv beside the manifest if it exists, else None."""
        if isinstance(opinions, Opinions):
            return opinions
        if opinions is not None:
            return Opinions.load(opinions)
        default = self.default_opinions_path()
        return Opinions.load(default) if default.is_file() else None

    # ---- labels --------------------------------------------------------------------------------------
    def available_sources(self, opinions: Opinions | None = None) -> list[str]:
        """Label sources this manifest can provide."""
        sources = [name for name in SCHEME_COLUMNS if name in self.columns]
        if any(name.startswith(TRUTH_PREFIX) for name in self.columns):
            sources.append("truth")
        if self.has_crowd_counts or opinions is not None:
            sources += ["crowd-soft", "crowd-majority"]
        if opinions is not None:
            sources.append("crowd-ds")
        sources += [f"expert:{name}" for name in self.expert_names]
        if len(self.expert_names) >= 2:
            sources.append("expert-majority")
        return sources

    def _column_labels(self, column: str, scheme: str) -> np.ndarray:
        """Class indices of a label column in ``scheme`` (-1 if blank), converting bline3 to bline2."""
        values = self.column(column)
        classes = scheme_classes(scheme)
        read_as = scheme
        if scheme == "bline2" and infer_column_scheme(values) == "bline3":
            read_as = "bline3"
        hard = np.full(len(values), -1, dtype=np.int64)
        for i, (value, line) in enumerate(zip(values, self.lines)):
            try:
                name = normalise_label(read_as, value)
            except ValueError as error:
                held = infer_column_scheme(values)
                hint = f" (the column holds {held} labels)" if held and held != scheme else ""
                raise LungUSError(f"line {line}: column {column}: {error}{hint}", self.path) from None
            if name is not None:
                hard[i] = classes.index(BLINE3_TO_BLINE2[name] if read_as != scheme else name)
        return hard

    def _require_opinions(self, opinions, why: str) -> Opinions:
        loaded = self.load_opinions(opinions)
        if loaded is None:
            raise LungUSError(
                f"{why} needs per-rater opinions: give an opinions file or put {DEFAULT_OPINIONS_NAME} beside the manifest",
                self.path,
            )
        return loaded

    def fit_dawid_skene(
        self, opinions: str | os.PathLike | Opinions | None = None
    ) -> tuple[DawidSkeneResult, EncodedOpinions]:
        """Dawid-Skene over the bline3 opinions (given, or opinions.csv beside the manifest)."""
        encoded = self._require_opinions(opinions, "crowd-ds").encode(self.clips, "bline3")
        result = dawid_skene(
            encoded.clips,
            encoded.raters,
            encoded.labels,
            len(LABEL_SCHEMES["bline3"]),
            n_clips=len(self.rows),
            n_raters=len(encoded.rater_ids),
        )
        return result, encoded

    def crowd_opinion_counts(self, opinions: str | os.PathLike | Opinions | None = None) -> np.ndarray:
        """(N, 3) bline3 opinion counts: the crowd_* columns, else tallied from the opinions file."""
        if self.has_crowd_counts:
            return self.crowd_counts()
        loaded = self.load_opinions(opinions)
        if loaded is None:
            raise LungUSError(
                f"no crowd opinions: add the columns {', '.join(CROWD_COLUMNS)} or an opinions file",
                self.path,
            )
        encoded = loaded.encode(self.clips, "bline3")
        counts = np.zeros((len(self.rows), len(CROWD_COLUMNS)), dtype=np.int64)
        np.add.at(counts, (encoded.clips, encoded.labels), 1)
        return counts

    def _crowd_distribution(self, source: str, scheme: str, opinions) -> np.ndarray:
        """(N, K) crowd counts (crowd-soft / crowd-majority) or DS posteriors (crowd-ds) in ``scheme``."""
        if scheme not in ("bline3", "bline2"):
            raise LungUSError(
                f"crowd opinions are bline3 labels; {source} cannot give {scheme} labels", self.path
            )
        if source == "crowd-ds":
            result, encoded = self.fit_dawid_skene(opinions)
            rated = np.bincount(encoded.clips, minlength=len(self.rows)) > 0
            values = np.where(rated[:, None], result.posteriors, 0.0)
        else:
            values = self.crowd_opinion_counts(opinions).astype(float)
        return _collapse_to_bline2(values) if scheme == "bline2" else values

    def labels(
        self, source: str, scheme: str = "bline3", opinions: str | os.PathLike | Opinions | None = None
    ) -> LabelSet:
        """Labels of every row from ``source`` in ``scheme``; LungUSError if this manifest cannot give them.

        Hard sources give one-hot ``soft``; crowd-soft gives opinion distributions and
        crowd-ds Dawid-Skene posteriors. Rows without a label get hard -1 and a zero row.
        """
        classes = scheme_classes(scheme)
        n_classes = len(classes)
        if source in CROWD_SOURCES:
            values = self._crowd_distribution(source, scheme, opinions)
            if source == "crowd-majority":
                hard = majority_vote(values)
                return LabelSet(source, scheme, classes, hard, _one_hot(hard, n_classes), is_soft=False)
            soft = soft_labels(values) if source == "crowd-soft" else values
            has = soft.sum(axis=1) > 0
            hard = np.where(has, soft.argmax(axis=1), -1)
            return LabelSet(source, scheme, classes, hard, soft, is_soft=True)
        if source == "expert-majority":
            if len(self.expert_names) < 2:
                raise LungUSError("expert-majority needs at least two expert_<name> columns", self.path)
            votes = np.zeros((len(self.rows), n_classes))
            for name in self.expert_names:
                hard = self._column_labels(EXPERT_PREFIX + name, scheme)
                rows = np.flatnonzero(hard >= 0)
                votes[rows, hard[rows]] += 1
            hard = majority_vote(votes)
            return LabelSet(source, scheme, classes, hard, _one_hot(hard, n_classes), is_soft=False)
        column = self._source_column(source, scheme)
        hard = self._column_labels(column, scheme)
        return LabelSet(source, scheme, classes, hard, _one_hot(hard, n_classes), is_soft=False)

    def _source_column(self, source: str, scheme: str) -> str:
        fallback = "bline3" if scheme == "bline2" else None  # bline2 derives from bline3
        if source.startswith("expert:"):
            column = EXPERT_PREFIX + source[len("expert:") :]
            if column in self.columns:
                return column
            raise LungUSError(
                f"no column {column}; experts here: {', '.join(self.expert_names) or 'none'}", self.path
            )
        if source == "truth":
            candidates = [TRUTH_PREFIX + scheme] + ([TRUTH_PREFIX + fallback] if fallback else [])
        elif source in SCHEME_COLUMNS:
            if source != scheme and not (source == "bline3" and scheme == "bline2"):
                raise LungUSError(f"column {source} holds {source} labels, not {scheme}", self.path)
            candidates = [scheme, fallback] if source == scheme and fallback else [source]
        else:
            raise LungUSError(
                f"unknown label source {source!r}; this manifest offers: {', '.join(self.available_sources())}",
                self.path,
            )
        for column in candidates:
            if column in self.columns:
                return column
        raise LungUSError(f"no {' or '.join(candidates)} column for {source} labels in {scheme}", self.path)

    # ---- validation ----------------------------------------------------------------------------------
    def validate(self, check_files: bool = True, opinions: Opinions | None = None) -> list[ManifestIssue]:
        """Every problem found, errors and warnings, in file order. See :mod:`lungus.data.validation`."""
        from lungus.data.validation import validate_manifest

        return validate_manifest(self, check_files=check_files, opinions=opinions)


__all__ = [
    "CANONICAL_ORDER",
    "EXPERT_PREFIX",
    "LabelSet",
    "Manifest",
    "ManifestIssue",
    "REQUIRED_COLUMNS",
    "TRUTH_PREFIX",
    "clip_key",
    "infer_column_scheme",
]
