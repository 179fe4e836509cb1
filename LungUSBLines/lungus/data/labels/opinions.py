"""Long-format crowd opinions: a CSV with one opinion per row, columns ``clip, rater, label``.

``clip`` holds the same text as the manifest's ``clip`` column (a path relative to the
manifest); ``label`` is a bline3 value (none / discrete / confluent) unless another
scheme is asked for.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lungus.data.csvfile import read_csv_table, write_csv_table
from lungus.data.labels.schemes import normalise_label, scheme_classes
from lungus.errors import LungUSError

OPINION_COLUMNS = ("clip", "rater", "label")
DEFAULT_OPINIONS_NAME = "opinions.csv"


def clip_key(text: str) -> str:
    """How clip references are compared: trimmed, forward slashes, normalised ('./a/../b' == 'b')."""
    text = text.strip().replace("\\", "/")
    return posixpath.normpath(text) if text else ""


@dataclass(frozen=True)
class OpinionIssue:
    line: int
    column: str
    message: str


@dataclass
class EncodedOpinions:
    """Opinions as index arrays for crowd.dawid_skene: clip, rater and class per opinion."""

    clips: np.ndarray
    raters: np.ndarray
    labels: np.ndarray
    rater_ids: list[str]
    n_clips: int


@dataclass
class Opinions:
    """Raw opinion rows (strings) and the file line each came from."""

    path: Path | None
    clips: list[str]
    raters: list[str]
    labels: list[str]
    lines: list[int]

    def __len__(self) -> int:
        return len(self.clips)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Opinions:
        """Read an opinions CSV; LungUSError if unreadable or a column is missing."""
        header, rows = read_csv_table(path, "opinions file")
        missing = [name for name in OPINION_COLUMNS if name not in header]
        if missing:
            raise LungUSError(
                f"line 1: missing column {', '.join(missing)}; an opinions file needs columns clip,rater,label",
                path,
            )
        index = [header.index(name) for name in OPINION_COLUMNS]
        columns: list[list[str]] = [[], [], []]
        lines = []
        for line, fields in rows:
            padded = fields + [""] * (len(header) - len(fields))
            for values, position in zip(columns, index):
                values.append(padded[position].strip())
            lines.append(line)
        return cls(Path(path), columns[0], columns[1], columns[2], lines)

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[str]]) -> Opinions:
        clips, raters, labels = [], [], []
        for clip, rater, label in rows:
            clips.append(str(clip))
            raters.append(str(rater))
            labels.append(str(label))
        return cls(None, clips, raters, labels, list(range(2, len(clips) + 2)))

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically as clip,rater,label."""
        return write_csv_table(path, OPINION_COLUMNS, zip(self.clips, self.raters, self.labels))

    def issues(self, clip_names: Sequence[str], scheme: str = "bline3") -> list[OpinionIssue]:
        """Every problem in the rows: unknown clip, blank rater, label outside the scheme, repeats."""
        known = {clip_key(name) for name in clip_names}
        found: list[OpinionIssue] = []
        first_seen: dict[tuple[str, str], int] = {}
        unknown: dict[str, list[int]] = {}  # one issue per unknown clip, not per opinion
        for clip, rater, label, line in zip(self.clips, self.raters, self.labels, self.lines):
            if clip_key(clip) not in known:
                unknown.setdefault(clip, []).append(line)
                if len(unknown[clip]) == 1:
                    found.append(OpinionIssue(line, "clip", ""))
            if not rater:
                found.append(OpinionIssue(line, "rater", "blank rater id"))
            try:
                if normalise_label(scheme, label) is None:
                    found.append(OpinionIssue(line, "label", "blank label"))
            except ValueError as error:
                found.append(OpinionIssue(line, "label", str(error)))
            pair = (clip_key(clip), rater)
            if pair in first_seen:
                found.append(
                    OpinionIssue(
                        line,
                        "rater",
                        f"rater {rater!r} already labelled this clip on line {first_seen[pair]}",
                    )
                )
            else:
                first_seen[pair] = line
        messages = {lines[0]: (clip, len(lines)) for clip, lines in unknown.items()}
        for position, issue in enumerate(found):
            if issue.column == "clip" and not issue.message:
                clip, count = messages[issue.line]
                found[position] = OpinionIssue(
                    issue.line,
                    "clip",
                    f"clip {clip!r} is not in the manifest ({count} opinion{'s' * (count != 1)})",
                )
        return found

    def encode(self, clip_names: Sequence[str], scheme: str = "bline3") -> EncodedOpinions:
        """Index arrays against the manifest's clips; LungUSError at the first bad row.

        A rater who labelled a clip twice keeps both opinions (each counts as a vote).
        """
        classes = scheme_classes(scheme)
        clip_index = {clip_key(name): i for i, name in enumerate(clip_names)}
        rater_index: dict[str, int] = {}
        clips, raters, labels = [], [], []
        for clip, rater, label, line in zip(self.clips, self.raters, self.labels, self.lines):
            key = clip_key(clip)
            if key not in clip_index:
                raise LungUSError(f"line {line}: clip {clip!r} is not in the manifest", self.path)
            if not rater:
                raise LungUSError(f"line {line}: blank rater id", self.path)
            try:
                name = normalise_label(scheme, label)
            except ValueError as error:
                raise LungUSError(f"line {line}: column label: {error}", self.path) from None
            if name is None:
                raise LungUSError(f"line {line}: blank label", self.path)
            clips.append(clip_index[key])
            raters.append(rater_index.setdefault(rater, len(rater_index)))
            labels.append(classes.index(name))
        return EncodedOpinions(
            clips=np.asarray(clips, dtype=np.int64),
            raters=np.asarray(raters, dtype=np.int64),
            labels=np.asarray(labels, dtype=np.int64),
            rater_ids=list(rater_index),
            n_clips=len(clip_names),
        )
