"""Compare two models on the same clips: the engine behind `lungus compare`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lungus.errors import LungUSError


def _model_file(run: Path) -> Path | None:
    if run.is_file():
        return run
    if (run / "model.pt").is_file():
        return run / "model.pt"
    return None


def load_predictions(run: Path, manifest: Path | None, labels: str | None, out: Path, name: str,
                     device: str = "auto") -> tuple[list[dict[str, Any]], list[str]]:
    """Per-clip predictions of a run: evaluated on ``manifest`` if given, else read from the
    run's predictions.csv (a `lungus evaluate` folder or a cross-validation run)."""
    from lungus.evaluate.report import read_prediction_table

    run = Path(run)
    if manifest is not None:
        model = _model_file(run)
        if model is None:
            raise LungUSError("no model.pt here to evaluate", run)
        from lungus.evaluate.model_eval import evaluate_model

        evaluation = evaluate_model(model, manifest, out / name, labels=labels, device=device, n_boot=0)
        from lungus.models.model_files import read_card

        return evaluation.predictions, read_card(model).class_names
    if run.is_dir() and not (run / "predictions.csv").is_file():
        raise LungUSError("no predictions.csv here; pass --manifest to evaluate the model", run)
    return read_prediction_table(run)


def run_name(run: Path) -> str:
    """What to call a run in a figure: its model card's name, the model an evaluation folder
    scored (metrics.json ``model``), else the folder's (or the model file's) name."""
    import json

    run = Path(run)
    model = _model_file(run)
    if model is not None:
        from lungus.models.model_files import read_card

        try:
            name = read_card(model).name
        except LungUSError:
            name = ""
        if name:
            return name
    metrics = run / "metrics.json"
    if run.is_dir() and metrics.is_file():
        try:
            name = json.loads(metrics.read_text(encoding="utf-8")).get("model")
        except (OSError, ValueError, AttributeError):
            name = None
        if isinstance(name, str) and name:
            return name
    return run.stem if run.is_file() else run.name


def compare_runs(run_a: Path, run_b: Path, *, manifest: Path | None, out: Path, labels: str | None = None,
                 n_boot: int = 2000, device: str = "auto", names: tuple[str, str] | None = None) -> dict[str, Any]:
    """Score (or read) both runs' per-clip predictions on their common clips and write
    OUT/comparison.json and, for a binary task, OUT/roc_compare.png with a curve per run,
    named by ``names`` (default :func:`run_name` of each)."""
    from lungus.evaluate.compare import paired_auc_comparison
    from lungus.evaluate.figures import roc_figure
    from lungus.evaluate.report import write_json

    out = Path(out)
    a, classes_a = load_predictions(run_a, manifest, labels, out, "a", device)
    b, classes_b = load_predictions(run_b, manifest, labels, out, "b", device)
    if classes_a != classes_b:
        raise LungUSError(f"the runs predict different classes ({classes_a} vs {classes_b})", run_b)
    by_clip = {p["clip"]: p for p in b}
    common = [p for p in a if p["clip"] in by_clip]
    if len(common) < 2:
        raise LungUSError("the runs share fewer than two clips; compare them on one --manifest", run_b)
    y = np.asarray([p["target"] for p in common]).argmax(axis=1)
    if any(np.argmax(by_clip[p["clip"]]["target"]) != t for p, t in zip(common, y)):
        raise LungUSError("the runs were scored against different labels; use one --manifest and --labels", run_b)
    prob_a = np.asarray([p["probabilities"] for p in common])
    prob_b = np.asarray([by_clip[p["clip"]]["probabilities"] for p in common])
    result = paired_auc_comparison(y, prob_a, prob_b, [p["patient"] for p in common], n_boot=n_boot)
    name_a, name_b = names or (run_name(run_a), run_name(run_b))
    if name_a == name_b:  # two runs of one name would share a legend entry
        name_a, name_b = f"A: {name_a}", f"B: {name_b}"
    result.update({"run_a": str(run_a), "run_b": str(run_b), "name_a": name_a, "name_b": name_b})
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "comparison.json", result)
    if prob_a.shape[1] == 2 and len(np.unique(y)) > 1:
        roc_figure(out / "roc_compare.png", y, prob_a, classes_a, curves={name_b: prob_b}, name=name_a)
    return result
