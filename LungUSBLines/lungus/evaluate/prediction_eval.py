"""Re-score a predictions table without its model: `lungus evaluate --predictions`.

A cross-validation run leaves RUN/predictions.csv, every clip scored by the fold model that
never saw its patient, but no single model that made them. Scoring that table against other
reference labels, or by subgroup, needs the table and the manifest only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lungus.data.labels.schemes import LABEL_SCHEMES
from lungus.data.labels.tasks import is_ordinal
from lungus.data.manifests.label_sources import labels_of
from lungus.data.manifests.manifest import Manifest
from lungus.errors import LungUSError
from lungus.evaluate.model_eval import Evaluation


def scheme_of_classes(class_names: Sequence[str]) -> str | None:
    """The label scheme whose classes these are, in order (None for any other class set)."""
    return next((name for name, classes in LABEL_SCHEMES.items() if tuple(class_names) == classes), None)


def evaluate_predictions(predictions_path: str | Path, manifest_path: str | Path, out: str | Path, *,
                         labels: str | None = None, by: Sequence[str] = (), n_boot: int = 1000) -> Evaluation:
    """Metrics, figures and subgroups of a predictions table.

    Args:
        predictions_path: a predictions.csv, or the folder holding one.
        manifest_path: the manifest the clips came from (for ``labels`` and ``by``).
        labels: reference labels from the manifest (a source such as ``expert:NAME``); by default
            the table's own ``label`` column.
        by: manifest columns to break the metrics down by (DIR/by_<column>.csv and .png).
    """
    from lungus.evaluate.report import (
        prediction_table_path,
        read_prediction_table,
        write_classification_report,
    )
    from lungus.evaluate.subgroups import prediction_rows, write_subgroups
    from lungus.evaluate.summaries import classification_summary

    out = Path(out)
    table = prediction_table_path(predictions_path)
    if (out / "predictions.csv").resolve() == table.resolve():
        raise LungUSError("--out is the folder of the predictions table, whose predictions.csv would be "
                          "overwritten; choose another output folder", out)
    predictions, class_names = read_prediction_table(table)
    if not predictions:
        raise LungUSError("the predictions table has no rows", table)
    manifest = Manifest.load(manifest_path)
    for column in by:
        manifest.column(column)
    scheme = scheme_of_classes(class_names)
    rows = prediction_rows(manifest, [p["clip"] for p in predictions])
    if labels is not None:
        if scheme is None:
            raise LungUSError(f"--labels needs a table of a known task; its classes ({', '.join(class_names)}) are "
                              f"none of {', '.join(LABEL_SCHEMES)}", table)
        hard = labels_of(manifest, labels, scheme).hard[rows]
        predictions = [{**p, "target": np.eye(len(class_names))[h].tolist()}
                       for p, h in zip(predictions, hard) if h >= 0]
        if not predictions:
            raise LungUSError(f"no predicted clip has a {labels} label", manifest.path)
    elif any(sum(p["target"]) != 1 for p in predictions):
        raise LungUSError("some rows' label is not one of the table's classes; pass --labels", table)
    ordinal = is_ordinal(scheme)
    metrics: dict[str, Any] = classification_summary(predictions, ordinal=ordinal, n_boot=n_boot)[0]
    metrics["labels"] = labels or f"the label column of {table}"
    folds = [p.get("fold") for p in predictions]
    extra = {"fold": folds} if all(f is not None for f in folds) else None
    tables, by_files = write_subgroups(out, predictions, class_names, manifest, by, ordinal=ordinal, n_boot=n_boot)
    if tables:
        metrics["by"] = tables
    files = {**write_classification_report(out, predictions, class_names, metrics, extra_columns=extra), **by_files}
    return Evaluation(metrics, predictions, [], files)
