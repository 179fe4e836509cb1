"""Metrics by subgroup: where a classifier fails (by zone, severity, site, probe, ...).

A pooled AUC hides strata that a model gets wrong ("hidden stratification",
Oakden-Rayner et al., 2020). A subgroup often holds one class only (every clip of
severity 3 has B-lines, say), so its own AUC is undefined; for binary tasks each
group's positives are therefore also ranked against all negatives, and its negatives
against all positives, which says which kind of clip pulls the AUC down.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lungus.atomic import atomic_write_text
from lungus.data.manifests.manifest import Manifest
from lungus.errors import LungUSError
from lungus.evaluate.metrics import binary_auc, classification_metrics

BLANK = "(blank)"
_GROUP_KEYS = ("auc", "accuracy", "balanced_accuracy", "sensitivity", "specificity", "kappa_quadratic", "ece")


def prediction_rows(manifest: Manifest, clips: Sequence[str]) -> list[int]:
    """The manifest row of each predicted clip (:func:`manifest_rows`). LungUSError names the
    first clip the manifest lacks."""
    rows = manifest_rows(manifest, clips)
    for clip, row in zip(clips, rows):
        if row is None:
            raise LungUSError(f"clip {clip} of the predictions is not in this manifest; "
                              "pass the manifest the predictions were made from", manifest.path)
    return rows


def manifest_rows(manifest: Manifest, clips: Sequence[str]) -> list[int | None]:
    """The manifest row of each clip (None where the manifest lacks it), matched by the clip
    column as written, else by its path resolved against the manifest's folder, else against
    the working folder (`lungus infer FOLDER` names clips by the path it found them at), else
    by its file name when exactly one of the manifest's clips has that name."""
    by_text = {text: r for r, text in reversed(list(enumerate(manifest.clips)))}
    by_path = {str(manifest.resolve(r)): r for r in reversed(range(len(manifest)))}
    names: dict[str, list[int]] = {}
    for r, text in enumerate(manifest.clips):
        names.setdefault(Path(text.replace("\\", "/")).name, []).append(r)
    rows: list[int | None] = []
    for clip in clips:
        row = by_text.get(clip)
        if row is None:
            path = Path(clip) if os.path.isabs(clip) else manifest.folder.resolve() / clip
            row = by_path.get(os.path.normpath(path))
        if row is None:
            row = by_path.get(os.path.abspath(clip))
        if row is None:
            same_name = names.get(Path(clip.replace("\\", "/")).name, [])
            row = same_name[0] if len(same_name) == 1 else None
        rows.append(row)
    return rows


def group_values(values: Sequence[str]) -> list[str]:
    """Group names as reported: stripped, with blank cells in one group of their own."""
    return [str(value).strip() or BLANK for value in values]


def _natural_key(value: str) -> tuple:
    """'2' before '10', numbers before words, the blank group last."""
    try:
        return (0, float(value), "")
    except ValueError:
        return (2 if value == BLANK else 1, 0.0, value)


def subgroup_metrics(y_true: Sequence[int], probabilities: np.ndarray, patients: Sequence[object],
                     groups: Sequence[str], class_names: Sequence[str], *, ordinal: bool = False,
                     n_boot: int = 1000, seed: int = 0, y_pred: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """One row of metrics per group value, in natural order (decisions ``y_pred``: by default the
    largest probability).

    Every row has ``value``, ``n_clips``, ``n_patients``, ``n_<class>`` and the metrics of
    :func:`classification_metrics` on the group's clips (None where undefined), with patient-bootstrap
    ``_ci``. Binary tasks add ``auc_positives_vs_all_negatives`` (this group's positives ranked
    against every negative clip), ``auc_negatives_vs_all_positives`` and the mean positive-class
    probability of the group's positives and negatives.
    """
    y_true = np.asarray(y_true, dtype=int)
    probabilities = np.asarray(probabilities, dtype=float)
    patients = np.asarray([str(p) for p in patients])
    groups = np.asarray(group_values(groups))
    if not (y_true.size == probabilities.shape[0] == patients.size == groups.size):
        raise ValueError(f"need one label, probability row, patient and group per clip: got {y_true.size}, "
                         f"{probabilities.shape[0]}, {patients.size}, {groups.size}")
    decided = None if y_pred is None else np.asarray(y_pred, dtype=int)
    binary = probabilities.shape[1] == 2
    positive, negative = class_names[-1], class_names[0]
    score = probabilities[:, 1] if binary else None
    rows = []
    for value in sorted(set(groups.tolist()), key=_natural_key):
        inside = groups == value
        metrics = classification_metrics(y_true[inside], probabilities[inside], patients[inside], ordinal=ordinal,
                                          n_boot=n_boot, seed=seed,
                                          y_pred=None if decided is None else decided[inside])
        row: dict[str, Any] = {"value": value, "n_clips": metrics["n_clips"], "n_patients": metrics["n_patients"]}
        row.update({f"n_{name}": int((y_true[inside] == k).sum()) for k, name in enumerate(class_names)})
        for key in _GROUP_KEYS:
            if key in metrics:
                row[key] = metrics[key]
                row[f"{key}_ci"] = metrics.get(f"{key}_ci")
        if score is not None:
            group_positives, group_negatives = inside & (y_true == 1), inside & (y_true == 0)
            against_negatives, against_positives = group_positives | (y_true == 0), group_negatives | (y_true == 1)
            row["auc_positives_vs_all_negatives"] = binary_auc(y_true[against_negatives], score[against_negatives])
            row["auc_negatives_vs_all_positives"] = binary_auc(y_true[against_positives], score[against_positives])
            row[f"mean_p_{positive}_of_{positive}"] = _mean(score[group_positives])
            row[f"mean_p_{positive}_of_{negative}"] = _mean(score[group_negatives])
        rows.append(row)
    return rows


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def _file_slug(column: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", column).strip("_") or "column"


def subgroup_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as CSV, each ``_ci`` split into ``_ci_low`` and ``_ci_high``."""
    header: list[str] = []
    flat_rows = []
    for row in rows:
        flat: dict[str, Any] = {}
        for key, value in row.items():
            if key.endswith("_ci"):
                low, high = value if value else (None, None)
                flat[f"{key}_low"], flat[f"{key}_high"] = low, high
            else:
                flat[key] = value
        for key in flat:
            if key not in header:
                header.append(key)
        flat_rows.append(flat)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for flat in flat_rows:
        writer.writerow(["" if flat.get(key) is None else
                         f"{flat[key]:.6g}" if isinstance(flat[key], float) else flat[key] for key in header])
    return buffer.getvalue()


def write_subgroups(out: Path, predictions: Sequence[dict[str, Any]], class_names: Sequence[str],
                    manifest: Manifest, columns: Sequence[str], *, ordinal: bool = False, n_boot: int = 1000,
                    seed: int = 0) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Path]]:
    """DIR/by_<column>.csv and DIR/by_<column>.png for each manifest column: the rows per
    column (for metrics.json's ``by``) and the files written; nothing for no columns."""
    from lungus.evaluate.figures import subgroup_figure
    from lungus.evaluate.metrics import decided_classes

    if not columns:
        return {}, {}
    for column in columns:
        manifest.column(column)  # a one-line error naming the manifest before any work
    rows = prediction_rows(manifest, [p["clip"] for p in predictions])
    y_true = np.asarray([np.argmax(p["target"]) for p in predictions], dtype=int)
    probabilities = np.asarray([p["probabilities"] for p in predictions], dtype=float)
    patients = [p["patient"] for p in predictions]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tables, files = {}, {}
    for column in columns:
        values = manifest.column(column)
        groups = group_values([values[r] for r in rows])
        table = subgroup_metrics(y_true, probabilities, patients, groups, class_names, ordinal=ordinal,
                                 n_boot=n_boot, seed=seed, y_pred=decided_classes(list(predictions)))
        slug = _file_slug(column)
        files[f"by_{slug}"] = atomic_write_text(out / f"by_{slug}.csv", subgroup_csv(table))
        files[f"by_{slug}_figure"] = subgroup_figure(out / f"by_{slug}.png", y_true, probabilities, groups,
                                                     class_names, column, table)
        tables[column] = table
    return tables, files

