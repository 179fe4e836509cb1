"""Manifest validation: every problem, with the file line (header = line 1) and the column.

Errors make a manifest unusable (exit status 2 from `lungus validate`):
  missing required column (clip, patient), a field count that differs from the header,
  blank clip or patient, clip file missing, the same clip twice, a label value outside
  its scheme, an expert column whose values fit no scheme, crowd counts that are not
  non-negative integers (or only partly filled), a mask file missing, an incomplete set of crowd columns,
  a fold that is not a non-negative integer, a patient in two folds (leakage), a
  ``train_only`` value other than yes/no/blank, an ``annotation_spacing_mm`` that is not one or two
  positive numbers, a patient with both train-only and scored clips
  (leakage into every fold's held-out clips), a
  ``truth_<scheme>`` column with an unknown scheme, and (with an opinions file) opinions
  on clips not in the manifest, blank raters or labels outside bline3.

Warnings do not (unless `--strict`):
  an empty class - a class of a label column in use that no clip has (over the whole
  manifest, and per fold for the reference columns) - because training can still run
  but that class can never be learned or scored; a label column with no labels at all;
  rows with a blank fold when other rows have one; a rater who labelled the same clip
  twice; crowd counts that differ from the opinions file.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from lungus.data.labels.annotation_spacing import ANNOTATION_SPACING, annotation_spacing, spacing_problem
from lungus.data.labels.crowd import majority_vote
from lungus.data.labels.opinions import Opinions, clip_key
from lungus.data.labels.schemes import CROWD_COLUMNS, LABEL_SCHEMES, normalise_label, scheme_classes
from lungus.data.manifests.label_sources import crowd_counts, infer_column_scheme
from lungus.data.manifests.manifest import (
    EXPERT_PREFIX,
    REQUIRED_COLUMNS,
    SCHEME_COLUMNS,
    TRAIN_ONLY_COLUMN,
    TRUTH_PREFIX,
    Manifest,
    ManifestIssue,
    parse_int,
    patients_train_only_and_scored,
    train_only_flag,
)

ERROR, WARNING = "error", "warning"


def _header_issues(manifest: Manifest) -> list[ManifestIssue]:
    found = []
    for name in REQUIRED_COLUMNS:
        if name not in manifest.columns:
            found.append(ManifestIssue(ERROR, 1, name, "missing required column"))
    present_crowd = [name for name in CROWD_COLUMNS if name in manifest.columns]
    if present_crowd and len(present_crowd) < len(CROWD_COLUMNS):
        missing = [name for name in CROWD_COLUMNS if name not in manifest.columns]
        found.append(
            ManifestIssue(
                ERROR, 1, ", ".join(missing), f"crowd counts need all of {', '.join(CROWD_COLUMNS)}"
            )
        )
    for name in manifest.columns:
        if name.startswith(TRUTH_PREFIX) and name[len(TRUTH_PREFIX) :] not in LABEL_SCHEMES:
            found.append(
                ManifestIssue(
                    ERROR, 1, name, f"unknown scheme; truth columns are truth_{'/truth_'.join(LABEL_SCHEMES)}"
                )
            )
        if name == EXPERT_PREFIX:
            found.append(ManifestIssue(ERROR, 1, name, "expert column without a name; use expert_<name>"))
    return found


def _count_fitting(values: list[str], scheme: str) -> int:
    total = 0
    for value in values:
        try:
            normalise_label(scheme, value)
            total += 1
        except ValueError:
            pass
    return total


def _expert_schemes(manifest: Manifest) -> dict[str, str]:
    """Scheme of each expert column: the inferred one, else the one most of its values fit."""
    schemes = {}
    for name in manifest.columns:
        if not name.startswith(EXPERT_PREFIX) or name == EXPERT_PREFIX:
            continue
        values = manifest.column(name)
        scheme = infer_column_scheme(values)
        if scheme is None:
            scheme = max(
                LABEL_SCHEMES, key=lambda candidate, values=values: _count_fitting(values, candidate)
            )
        schemes[name] = scheme
    return schemes


def _label_schemes(manifest: Manifest) -> dict[str, str]:
    """Every label column with a known scheme -> that scheme."""
    schemes = {name: name for name in SCHEME_COLUMNS if name in manifest.columns}
    for name in manifest.columns:
        if name.startswith(TRUTH_PREFIX) and name[len(TRUTH_PREFIX) :] in LABEL_SCHEMES:
            schemes[name] = name[len(TRUTH_PREFIX) :]
    schemes.update(_expert_schemes(manifest))
    return schemes


def _row_issues(manifest: Manifest, check_files: bool, label_schemes: dict[str, str]) -> list[ManifestIssue]:
    found = []
    has_clip, has_patient = "clip" in manifest.columns, "patient" in manifest.columns
    has_mask = "mask" in manifest.columns
    crowd_complete = manifest.has_crowd_counts
    first_line_of_clip: dict[str, int] = {}
    for i, (row, line) in enumerate(zip(manifest.rows, manifest.lines)):
        n_fields = manifest.field_counts[i]
        if n_fields != len(manifest.columns):
            found.append(
                ManifestIssue(
                    ERROR, line, None, f"row has {n_fields} fields, the header has {len(manifest.columns)}"
                )
            )
        if has_clip:
            clip = row["clip"]
            if not clip:
                found.append(ManifestIssue(ERROR, line, "clip", "blank clip path"))
            else:
                key = clip_key(str(manifest.clip_path(i)))
                if key in first_line_of_clip:
                    found.append(
                        ManifestIssue(
                            ERROR,
                            line,
                            "clip",
                            f"duplicated clip {clip!r} (also on line {first_line_of_clip[key]})",
                        )
                    )
                else:
                    first_line_of_clip[key] = line
                if check_files and not manifest.clip_path(i).exists():
                    found.append(
                        ManifestIssue(ERROR, line, "clip", f"clip file not found: {manifest.clip_path(i)}")
                    )
        if check_files and has_mask and row["mask"] and not manifest.resolve(i, "mask").exists():
            found.append(
                ManifestIssue(ERROR, line, "mask", f"mask file not found: {manifest.resolve(i, 'mask')}")
            )
        if has_patient and not row["patient"]:
            found.append(ManifestIssue(ERROR, line, "patient", "blank patient id"))
        for name, scheme in label_schemes.items():
            try:
                normalise_label(scheme, row[name])
            except ValueError as error:
                found.append(ManifestIssue(ERROR, line, name, f"unknown label: {error}"))
        if crowd_complete:
            blanks = [not row[name] for name in CROWD_COLUMNS]
            if any(blanks) and not all(blanks):
                found.append(
                    ManifestIssue(
                        ERROR,
                        line,
                        ", ".join(n for n, b in zip(CROWD_COLUMNS, blanks) if b),
                        "crowd counts partly blank; fill all three (0 for none) or leave all blank",
                    )
                )
            for name in CROWD_COLUMNS:
                try:
                    value = parse_int(row[name])
                except ValueError:
                    value = -1
                if value is not None and value < 0:
                    found.append(
                        ManifestIssue(ERROR, line, name, f"{row[name]!r} is not a non-negative integer count")
                    )
        spacing = row.get(ANNOTATION_SPACING, "")
        if spacing.strip() and annotation_spacing(spacing) is None:
            found.append(ManifestIssue(ERROR, line, ANNOTATION_SPACING, spacing_problem(spacing)))
        only = row.get(TRAIN_ONLY_COLUMN, "")
        if train_only_flag(only) is None:
            found.append(ManifestIssue(ERROR, line, TRAIN_ONLY_COLUMN, f"{only!r} is not yes, no or blank"))
        if "fold" in manifest.columns:
            try:
                fold = parse_int(row["fold"])
            except ValueError:
                fold = -1
            if fold is not None and fold < 0:
                found.append(
                    ManifestIssue(ERROR, line, "fold", f"{row['fold']!r} is not a non-negative integer")
                )
    return found


def _train_only_flags(manifest: Manifest) -> list[bool]:
    """Train-only flag per row, with unreadable values (reported as row errors) counted as scored."""
    if TRAIN_ONLY_COLUMN not in manifest.columns:
        return [False] * len(manifest.rows)
    return [bool(train_only_flag(row[TRAIN_ONLY_COLUMN])) for row in manifest.rows]


def _train_only_issues(manifest: Manifest) -> list[ManifestIssue]:
    """A patient with train-only and scored clips would train on the clips it is scored on."""
    if "patient" not in manifest.columns:
        return []
    clips = zip((row["patient"] for row in manifest.rows), _train_only_flags(manifest), manifest.lines)
    return [ManifestIssue(ERROR, scored_line, TRAIN_ONLY_COLUMN,
                          f"patient {patient!r} has train-only clips (line {train_only_line}) and scored ones: "
                          "their clips would train the models that score them; give them other patient ids")
            for patient, train_only_line, scored_line in patients_train_only_and_scored(clips)]


def _fold_issues(manifest: Manifest) -> list[ManifestIssue]:
    if "fold" not in manifest.columns or "patient" not in manifest.columns:
        return []
    found = []
    folds_of: dict[str, dict[int, int]] = defaultdict(dict)  # patient -> fold -> first line
    blank_lines = []
    train_only = _train_only_flags(manifest)
    for row, line, only in zip(manifest.rows, manifest.lines, train_only):
        if only:
            continue  # train-only clips are in no fold by design
        try:
            fold = parse_int(row["fold"])
        except ValueError:
            continue  # reported as a row error
        if fold is None:
            blank_lines.append(line)
        elif fold >= 0 and row["patient"]:
            folds_of[row["patient"]].setdefault(fold, line)
    for patient, folds in folds_of.items():
        if len(folds) > 1:
            lines = sorted(folds.values())
            listing = ", ".join(f"fold {f} (line {folds[f]})" for f in sorted(folds))
            found.append(
                ManifestIssue(
                    ERROR,
                    lines[1],
                    "fold",
                    f"patient {patient!r} is in more than one fold: {listing}; leakage between folds "
                    "(re-run `lungus split`)",
                )
            )
    if blank_lines and len(blank_lines) < len(manifest.rows) - sum(train_only):
        shown = ", ".join(map(str, blank_lines[:10])) + (" ..." if len(blank_lines) > 10 else "")
        found.append(
            ManifestIssue(
                WARNING,
                blank_lines[0],
                "fold",
                f"{len(blank_lines)} rows have no fold (lines {shown}); they are in no fold",
            )
        )
    return found


def _class_issues(
    manifest: Manifest, label_schemes: dict[str, str], row_errors: set[tuple[int, str]]
) -> list[ManifestIssue]:
    """Empty-class warnings: classes of a column in use that no clip (or no clip of a fold) has."""
    found = []
    columns: dict[str, tuple[str, np.ndarray]] = {}
    for name, scheme in label_schemes.items():
        classes = scheme_classes(scheme)
        hard = np.full(len(manifest.rows), -1)
        for i, (row, line) in enumerate(zip(manifest.rows, manifest.lines)):
            if (line, name) in row_errors:
                continue
            value = normalise_label(scheme, row[name])
            if value is not None:
                hard[i] = classes.index(value)
        columns[name] = (scheme, hard)
    if manifest.has_crowd_counts and not any(column in CROWD_COLUMNS for _, column in row_errors):
        counts = crowd_counts(manifest)
        columns["crowd majority vote"] = ("bline3", majority_vote(counts))
    folds = None
    if "fold" in manifest.columns and not any(column == "fold" for _, column in row_errors):
        folds = np.array([-1 if f is None else f for f in manifest.folds()])
    for name, (scheme, hard) in columns.items():
        classes = scheme_classes(scheme)
        if not (hard >= 0).any():
            found.append(ManifestIssue(WARNING, None, name, "no labels in this column"))
            continue
        counts = np.bincount(hard[hard >= 0], minlength=len(classes))
        for k in np.flatnonzero(counts == 0):
            found.append(
                ManifestIssue(
                    WARNING,
                    None,
                    name,
                    f"empty class: no clip is {classes[k]!r} ({scheme}); that class cannot be learned or scored",
                )
            )
        is_reference = name in SCHEME_COLUMNS or name.startswith(TRUTH_PREFIX)
        if folds is not None and is_reference:
            for fold in sorted(set(folds[folds >= 0].tolist())):
                in_fold = hard[(folds == fold) & (hard >= 0)]
                missing = [
                    classes[k] for k in np.flatnonzero(np.bincount(in_fold, minlength=len(classes)) == 0)
                ]
                missing = [c for c in missing if counts[classes.index(c)] > 0]  # already reported overall
                if missing and len(in_fold):
                    found.append(
                        ManifestIssue(
                            WARNING,
                            None,
                            name,
                            f"empty class in fold {fold}: no {', '.join(map(repr, missing))} clip; "
                            "re-run `lungus split` or use fewer folds",
                        )
                    )
    return found


def _opinion_issues(manifest: Manifest, opinions: Opinions) -> list[ManifestIssue]:
    if "clip" not in manifest.columns:
        return []
    file = None if opinions.path is None else str(opinions.path)
    found = []
    for issue in opinions.issues(manifest.clips, "bline3"):
        is_repeat = issue.column == "rater" and "already labelled" in issue.message
        found.append(
            ManifestIssue(WARNING if is_repeat else ERROR, issue.line, issue.column, issue.message, file)
        )
    if manifest.has_crowd_counts:
        try:
            counts = crowd_counts(manifest)
        except Exception:  # bad counts are already row errors
            return found
        index = {clip_key(name): i for i, name in enumerate(manifest.clips)}
        from_opinions = np.zeros_like(counts)
        classes = LABEL_SCHEMES["bline3"]
        for clip, label in zip(opinions.clips, opinions.labels):
            try:
                name = normalise_label("bline3", label)
            except ValueError:
                continue
            if clip_key(clip) in index and name is not None:
                from_opinions[index[clip_key(clip)], classes.index(name)] += 1
        for i in np.flatnonzero((from_opinions != counts).any(axis=1)):
            found.append(
                ManifestIssue(
                    WARNING,
                    manifest.lines[i],
                    "crowd_*",
                    f"crowd counts {counts[i].tolist()} differ from the opinions file's "
                    f"{from_opinions[i].tolist()} for this clip",
                )
            )
    return found


def validate_manifest(
    manifest: Manifest, check_files: bool = True, opinions: Opinions | None = None
) -> list[ManifestIssue]:
    """All issues: header, rows (in file order), folds, empty classes, then the opinions file."""
    found = _header_issues(manifest)
    if not manifest.rows:
        found.append(ManifestIssue(ERROR, None, None, "no clips: the manifest has a header but no rows"))
        return found
    label_schemes = _label_schemes(manifest)
    row_issues = _row_issues(manifest, check_files, label_schemes)
    found += row_issues
    found += _fold_issues(manifest)
    found += _train_only_issues(manifest)
    row_errors = {(issue.line, column) for issue in row_issues for column in (issue.column or "").split(", ")}
    found += _class_issues(manifest, label_schemes, row_errors)
    if opinions is not None:
        found += _opinion_issues(manifest, opinions)
    return found
