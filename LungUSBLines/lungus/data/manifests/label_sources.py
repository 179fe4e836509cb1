"""The labels a manifest gives: from its scheme, expert and truth columns, the crowd's opinion
counts or a per-rater opinions file (lungus.data.manifests.manifest holds the table itself).

Sources (:func:`labels_of`): ``crowd-soft``, ``crowd-majority``, ``crowd-ds`` (needs long-format
opinions), ``expert:NAME``, ``expert-majority``, ``truth`` and the plain scheme columns
``bline2`` / ``bline3`` / ``lus4``. A bline2 label can always be derived from bline3 (none ->
absent, discrete and confluent -> present).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lungus.data.labels.crowd import DawidSkeneResult, dawid_skene, majority_vote, soft_labels
from lungus.data.labels.opinions import DEFAULT_OPINIONS_NAME, EncodedOpinions, Opinions
from lungus.data.labels.schemes import (
    BLINE3_TO_BLINE2,
    CROWD_COLUMNS,
    LABEL_SCHEMES,
    normalise_label,
    scheme_classes,
)
from lungus.data.manifests.manifest import (
    EXPERT_PREFIX,
    MAX_OPINION_COUNT,
    SCHEME_COLUMNS,
    TRUTH_PREFIX,
    Manifest,
    parse_int,
)
from lungus.errors import LungUSError

CROWD_SOURCES = ("crowd-soft", "crowd-majority", "crowd-ds")
OpinionsLike = str | os.PathLike | Opinions | None

# Collapsing bline3 class indices onto bline2 ones.
_BLINE3_TO_BLINE2_INDEX = np.array(
    [LABEL_SCHEMES["bline2"].index(BLINE3_TO_BLINE2[name]) for name in LABEL_SCHEMES["bline3"]]
)


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


def label_columns(manifest: Manifest) -> dict[str, str | None]:
    """Column -> scheme for every label column (scheme columns, expert_*, truth_*); None if unknown."""
    found: dict[str, str | None] = {}
    for name in manifest.columns:
        if name in SCHEME_COLUMNS:
            found[name] = name
        elif name.startswith(TRUTH_PREFIX):
            scheme = name[len(TRUTH_PREFIX) :]
            found[name] = scheme if scheme in LABEL_SCHEMES else None
        elif name.startswith(EXPERT_PREFIX):
            found[name] = infer_column_scheme(manifest.column(name))
    return found


def available_sources(manifest: Manifest, opinions: Opinions | None = None) -> list[str]:
    """Label sources ``manifest`` (with ``opinions``) can provide."""
    sources = [name for name in SCHEME_COLUMNS if name in manifest.columns]
    if any(name.startswith(TRUTH_PREFIX) for name in manifest.columns):
        sources.append("truth")
    if manifest.has_crowd_counts or opinions is not None:
        sources += ["crowd-soft", "crowd-majority"]
    if opinions is not None:
        sources.append("crowd-ds")
    sources += [f"expert:{name}" for name in manifest.expert_names]
    if len(manifest.expert_names) >= 2:
        sources.append("expert-majority")
    return sources


def labels_of(manifest: Manifest, source: str, scheme: str = "bline3", opinions: OpinionsLike = None) -> LabelSet:
    """Labels of every row of ``manifest`` from ``source`` in ``scheme``; LungUSError if it cannot give them.

    Hard sources give one-hot ``soft``; crowd-soft gives opinion distributions and
    crowd-ds Dawid-Skene posteriors. Rows without a label get hard -1 and a zero row.
    """
    classes = scheme_classes(scheme)
    n_classes = len(classes)
    if source in CROWD_SOURCES:
        values = _crowd_distribution(manifest, source, scheme, opinions)
        if source == "crowd-majority":
            hard = majority_vote(values)
            return LabelSet(source, scheme, classes, hard, _one_hot(hard, n_classes), is_soft=False)
        soft = soft_labels(values) if source == "crowd-soft" else values
        has = soft.sum(axis=1) > 0
        hard = np.where(has, soft.argmax(axis=1), -1)
        return LabelSet(source, scheme, classes, hard, soft, is_soft=True)
    if source == "expert-majority":
        hard = _expert_majority(manifest, scheme, n_classes)
    else:
        hard = _column_labels(manifest, _source_column(manifest, source, scheme), scheme)
    return LabelSet(source, scheme, classes, hard, _one_hot(hard, n_classes), is_soft=False)


# ---- the crowd ---------------------------------------------------------------------------------------


def crowd_counts(manifest: Manifest) -> np.ndarray:
    """(N, 3) int opinion counts of the crowd_* columns (none, discrete, confluent); blank rows count zero."""
    manifest.require_columns(*CROWD_COLUMNS)
    counts = np.zeros((len(manifest.rows), len(CROWD_COLUMNS)), dtype=np.int64)
    for i, (row, line) in enumerate(zip(manifest.rows, manifest.lines)):
        for k, name in enumerate(CROWD_COLUMNS):
            try:
                value = parse_int(row[name])
            except ValueError:
                value = -1
            if value is not None and not 0 <= value <= MAX_OPINION_COUNT:
                raise LungUSError(
                    f"line {line}: column {name}: {row[name][:40]!r} is not an integer count "
                    f"from 0 to {MAX_OPINION_COUNT:,}",
                    manifest.path,
                )
            counts[i, k] = value or 0
    return counts


def default_opinions_path(manifest: Manifest) -> Path:
    return manifest.folder / DEFAULT_OPINIONS_NAME


def load_opinions(manifest: Manifest, opinions: OpinionsLike = None) -> Opinions | None:
    """The given opinions, or DIR/opinions.csv beside the manifest if it exists, else None."""
    if isinstance(opinions, Opinions):
        return opinions
    if opinions is not None:
        return Opinions.load(opinions)
    default = default_opinions_path(manifest)
    return Opinions.load(default) if default.is_file() else None


def crowd_opinion_counts(manifest: Manifest, opinions: OpinionsLike = None) -> np.ndarray:
    """(N, 3) bline3 opinion counts: the crowd_* columns, else tallied from the opinions file."""
    if manifest.has_crowd_counts:
        return crowd_counts(manifest)
    loaded = load_opinions(manifest, opinions)
    if loaded is None:
        raise LungUSError(
            f"no crowd opinions: add the columns {', '.join(CROWD_COLUMNS)} or an opinions file", manifest.path
        )
    encoded = loaded.encode(manifest.clips, "bline3")
    counts = np.zeros((len(manifest.rows), len(CROWD_COLUMNS)), dtype=np.int64)
    np.add.at(counts, (encoded.clips, encoded.labels), 1)
    return counts


def fit_dawid_skene(manifest: Manifest, opinions: OpinionsLike = None) -> tuple[DawidSkeneResult, EncodedOpinions]:
    """Dawid-Skene over the bline3 opinions (given, or opinions.csv beside the manifest)."""
    loaded = load_opinions(manifest, opinions)
    if loaded is None:
        raise LungUSError(
            f"crowd-ds needs per-rater opinions: give an opinions file or put {DEFAULT_OPINIONS_NAME} beside the "
            "manifest",
            manifest.path,
        )
    encoded = loaded.encode(manifest.clips, "bline3")
    result = dawid_skene(
        encoded.clips,
        encoded.raters,
        encoded.labels,
        len(LABEL_SCHEMES["bline3"]),
        n_clips=len(manifest.rows),
        n_raters=len(encoded.rater_ids),
    )
    return result, encoded


def _crowd_distribution(manifest: Manifest, source: str, scheme: str, opinions: OpinionsLike) -> np.ndarray:
    """(N, K) crowd counts (crowd-soft / crowd-majority) or DS posteriors (crowd-ds) in ``scheme``."""
    if scheme not in ("bline3", "bline2"):
        raise LungUSError(f"crowd opinions are bline3 labels; {source} cannot give {scheme} labels", manifest.path)
    if source == "crowd-ds":
        result, encoded = fit_dawid_skene(manifest, opinions)
        rated = np.bincount(encoded.clips, minlength=len(manifest.rows)) > 0
        values = np.where(rated[:, None], result.posteriors, 0.0)
    else:
        values = crowd_opinion_counts(manifest, opinions).astype(float)
    return _collapse_to_bline2(values) if scheme == "bline2" else values


def _collapse_to_bline2(values: np.ndarray) -> np.ndarray:
    """(N, 3) bline3 counts or probabilities -> (N, 2) bline2."""
    collapsed = np.zeros((len(values), len(LABEL_SCHEMES["bline2"])))
    for k3, k2 in enumerate(_BLINE3_TO_BLINE2_INDEX):
        collapsed[:, k2] += values[:, k3]
    return collapsed


# ---- label columns: scheme, expert and truth -----------------------------------------------------------


def _expert_majority(manifest: Manifest, scheme: str, n_classes: int) -> np.ndarray:
    if len(manifest.expert_names) < 2:
        raise LungUSError("expert-majority needs at least two expert_<name> columns", manifest.path)
    votes = np.zeros((len(manifest.rows), n_classes))
    for name in manifest.expert_names:
        hard = _column_labels(manifest, EXPERT_PREFIX + name, scheme)
        rows = np.flatnonzero(hard >= 0)
        votes[rows, hard[rows]] += 1
    return majority_vote(votes)


def _column_labels(manifest: Manifest, column: str, scheme: str) -> np.ndarray:
    """Class indices of a label column in ``scheme`` (-1 if blank), converting bline3 to bline2."""
    values = manifest.column(column)
    classes = scheme_classes(scheme)
    read_as = scheme
    if scheme == "bline2" and infer_column_scheme(values) == "bline3":
        read_as = "bline3"
    hard = np.full(len(values), -1, dtype=np.int64)
    for i, (value, line) in enumerate(zip(values, manifest.lines)):
        try:
            name = normalise_label(read_as, value)
        except ValueError as error:
            held = infer_column_scheme(values)
            hint = f" (the column holds {held} labels)" if held and held != scheme else ""
            raise LungUSError(f"line {line}: column {column}: {error}{hint}", manifest.path) from None
        if name is not None:
            hard[i] = classes.index(BLINE3_TO_BLINE2[name] if read_as != scheme else name)
    return hard


def _source_column(manifest: Manifest, source: str, scheme: str) -> str:
    fallback = "bline3" if scheme == "bline2" else None  # bline2 derives from bline3
    if source.startswith("expert:"):
        column = EXPERT_PREFIX + source[len("expert:") :]
        if column in manifest.columns:
            return column
        raise LungUSError(
            f"no column {column}; experts here: {', '.join(manifest.expert_names) or 'none'}", manifest.path
        )
    if source == "truth":
        candidates = [TRUTH_PREFIX + scheme] + ([TRUTH_PREFIX + fallback] if fallback else [])
    elif source in SCHEME_COLUMNS:
        if source != scheme and not (source == "bline3" and scheme == "bline2"):
            raise LungUSError(f"column {source} holds {source} labels, not {scheme}", manifest.path)
        candidates = [scheme, fallback] if source == scheme and fallback else [source]
    else:
        raise LungUSError(
            f"unknown label source {source!r}; this manifest offers: {', '.join(available_sources(manifest))}",
            manifest.path,
        )
    for column in candidates:
        if column in manifest.columns:
            return column
    raise LungUSError(f"no {' or '.join(candidates)} column for {source} labels in {scheme}", manifest.path)


def _one_hot(hard: np.ndarray, n_classes: int) -> np.ndarray:
    soft = np.zeros((len(hard), n_classes))
    rows = np.flatnonzero(hard >= 0)
    soft[rows, hard[rows]] = 1.0
    return soft
