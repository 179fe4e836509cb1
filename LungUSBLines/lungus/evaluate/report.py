"""Writing an evaluation: metrics.json, per-clip predictions.csv and the figures."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lungus.atomic import atomic_write_text
from lungus.errors import LungUSError


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-able: {type(value).__name__}")


def write_json(path: Path, data: Any) -> Path:
    """JSON with NaN written as null (JSON has no NaN)."""
    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    return atomic_write_text(path, json.dumps(clean(json.loads(json.dumps(data, default=_json_default))), indent=2) + "\n")


def write_classification_report(out: Path, predictions: Sequence[dict[str, Any]], class_names: Sequence[str],
                                metrics: dict[str, Any], extra_columns: dict[str, Sequence[Any]] | None = None,
                                comparison_curves: dict[str, np.ndarray] | None = None) -> dict[str, Path]:
    """DIR/metrics.json, predictions.csv, roc.png, confusion.png, reliability.png."""
    from lungus.evaluate.figures import confusion_figure, reliability_figure, roc_figure

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    targets = np.asarray([p["target"] for p in predictions], dtype=float)
    probabilities = np.asarray([p["probabilities"] for p in predictions], dtype=float)
    from lungus.evaluate.summaries import decided_classes

    decided = decided_classes(list(predictions))
    y_true = targets.argmax(axis=1)
    y_pred = probabilities.argmax(axis=1) if decided is None else decided
    header = ["clip", "patient", "label", "pred"] + [f"p_{name}" for name in class_names]
    extra_columns = extra_columns or {}
    header += list(extra_columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for i, p in enumerate(predictions):
        row = [p["clip"], p["patient"], class_names[y_true[i]], class_names[y_pred[i]]]
        row += [f"{v:.6f}" for v in probabilities[i]]
        row += [values[i] for values in extra_columns.values()]
        writer.writerow(row)
    paths = {
        "metrics": write_json(out / "metrics.json", metrics),
        "predictions": atomic_write_text(out / "predictions.csv", buffer.getvalue()),
        "confusion": confusion_figure(out / "confusion.png", y_true, y_pred, class_names),
        "reliability": reliability_figure(out / "reliability.png", y_true, probabilities),
    }
    if len(np.unique(y_true)) > 1:
        paths["roc"] = roc_figure(out / "roc.png", y_true, probabilities, class_names, curves=comparison_curves)
    return paths


def read_predictions(path: Path, class_names: Sequence[str]) -> list[dict[str, Any]]:
    """predictions.csv back into prediction dicts (clip, patient, target one-hot, probabilities,
    and the decided class ``pred`` and ``fold`` where the table has them)."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    out = []
    for i, row in enumerate(rows):
        target = [1.0 if row["label"] == name else 0.0 for name in class_names]
        out.append({"index": i, "clip": row["clip"], "patient": row["patient"], "target": target,
                    "probabilities": [float(row[f"p_{name}"]) for name in class_names],
                    **({"pred": list(class_names).index(row["pred"])} if row.get("pred") in class_names else {}),
                    **({"fold": int(row["fold"])} if row.get("fold") not in (None, "") else {})})
    return out


def prediction_table_path(path: str | Path) -> Path:
    """A predictions.csv given as the file or as the folder holding it."""
    path = Path(path)
    return path / "predictions.csv" if path.is_dir() else path


def read_prediction_table(path: str | Path) -> tuple[list[dict[str, Any]], list[str]]:
    """A predictions.csv (from `lungus evaluate` or a cross-validation run), or the folder
    holding one: the prediction dicts and the class names of its ``p_<class>`` columns."""
    path = Path(path)
    table = prediction_table_path(path)
    if not table.is_file():
        raise LungUSError("no predictions.csv here", path)
    with open(table, newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle), [])
    class_names = [h[2:] for h in header if h.startswith("p_")]
    missing = [c for c in ("clip", "patient", "label") if c not in header]
    if missing or len(class_names) < 2:
        raise LungUSError("not a predictions table: it needs clip, patient, label and two or more p_<class> "
                          f"columns (missing: {', '.join(missing) or 'p_<class>'})", table)
    return read_predictions(table, class_names), class_names
