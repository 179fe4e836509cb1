"""Several manifests as one (`lungus merge`): real clips with clip labels beside simulated clips
with dense truth, for instance, marked train-only so they train in every fold and are never
scored (docs/segmenter-weak-labels.md#simulated-truth-beside-weak-labels)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from lungus.data.manifests.manifest import TRAIN_ONLY_COLUMN, Manifest, patients_train_only_and_scored
from lungus.errors import LungUSError


def merge_manifests(out: str | os.PathLike, manifests: Sequence[str | os.PathLike],
                    train_only: Sequence[str | os.PathLike] = ()) -> Manifest:
    """One manifest at ``out`` (not yet saved) with the rows of ``manifests`` and, marked train-only,
    of ``train_only``; paths are rewritten relative to ``out``'s folder and columns are the union.
    LungUSError on a clip listed twice, or a patient id in both a train-only and another manifest
    (its clips would train the models that score it)."""
    if not manifests:
        raise LungUSError("merge needs at least one manifest whose clips are scored (train-only ones only train)")
    target = Path(out)
    rows: list[dict[str, str]] = []
    seen: dict[Path, str] = {}  # clip file -> where it was first listed
    patients: list[tuple[str, bool, str]] = []  # (patient, train-only?, where) per clip
    for path, only in [(p, False) for p in manifests] + [(p, True) for p in train_only]:
        manifest = Manifest.load(path)
        manifest.require_columns("clip", "patient")
        flags = manifest.train_only()
        for i, (row, merged) in enumerate(zip(manifest.rows, manifest.rows_relative_to(target.parent))):
            where = f"{manifest.path}:{manifest.lines[i]}"
            clip = manifest.clip_path(i)
            if clip in seen:
                raise LungUSError(f"line {manifest.lines[i]}: clip {row['clip']!r} is also listed at {seen[clip]}; "
                                  "a clip can be merged once", manifest.path)
            seen[clip] = where
            is_train_only = only or flags[i]
            patients.append((row["patient"], is_train_only, where))
            merged[TRAIN_ONLY_COLUMN] = "yes" if is_train_only else ""
            if is_train_only:
                merged["fold"] = ""  # train-only clips are in every fold's training set, no fold's
            rows.append(merged)
    leaks = patients_train_only_and_scored(patients)
    if leaks:
        patient, train_only_where, scored_where = leaks[0]
        raise LungUSError(f"patient {patient!r} has train-only clips ({train_only_where}) and scored "
                          f"ones ({scored_where}): its clips would train the models that score "
                          "them; give the train-only clips other patient ids")
    if not any(row[TRAIN_ONLY_COLUMN] for row in rows):
        for row in rows:
            del row[TRAIN_ONLY_COLUMN]
    return Manifest.from_rows(target, rows)
