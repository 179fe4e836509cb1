"""Evaluation figures (matplotlib, Agg backend, so they render on headless machines)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay  # noqa: E402

from lungus.atomic import atomic_path  # noqa: E402
from lungus.data.labels.schemes import LABEL_SCHEMES  # noqa: E402


def _save(figure: plt.Figure, path: Path) -> Path:
    path = Path(path)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=120, bbox_inches="tight", format="png")
    plt.close(figure)
    return path


def roc_figure(
    path: Path,
    y_true: np.ndarray,
    probabilities: np.ndarray,
    class_names: Sequence[str],
    curves: dict[str, np.ndarray] | None = None,
    name: str = "model",
) -> Path:
    """ROC curves: class 1 for a binary task, one-vs-rest per class otherwise (see :func:`draw_roc`)."""
    figure, axes = plt.subplots(figsize=(4.5, 4.5))
    draw_roc(axes, y_true, probabilities, class_names, curves, name)
    return _save(figure, path)


def draw_roc(axes: plt.Axes, y_true: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str],
             curves: dict[str, np.ndarray] | None = None, name: str = "model") -> None:
    """ROC curves on ``axes``. ``curves`` adds other models' probabilities (same clips) to one
    binary plot, each under its key in the legend, as ``probabilities`` is under ``name``."""
    binary = probabilities.shape[1] == 2
    if binary:
        for label, p in {name: probabilities, **(curves or {})}.items():
            RocCurveDisplay.from_predictions(y_true, p[:, 1], name=label, ax=axes)
    else:
        for k, class_name in enumerate(class_names):
            if 0 < (y_true == k).sum() < y_true.size:
                RocCurveDisplay.from_predictions(y_true == k, probabilities[:, k], name=f"{class_name} vs rest",
                                                 ax=axes)
    axes.plot([0, 1], [0, 1], color="0.7", linestyle="--", linewidth=1)
    # scikit-learn's own labels end in "(Positive label: 1)"; say what the rates are of.
    axes.set_xlabel("False positive rate (1 - specificity)")
    axes.set_ylabel("True positive rate (sensitivity)")
    axes.set_title(f"ROC: {class_names[1]} vs {class_names[0]}" if binary else "ROC, each class vs the rest")


def confusion_figure(path: Path, y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str],
                     title: str = "Confusion matrix") -> Path:
    figure, axes = plt.subplots(figsize=(4.5, 4.0))
    ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=list(range(len(class_names))), display_labels=list(class_names),
        ax=axes, colorbar=False, cmap="Blues",
    )
    axes.set_title(title)
    return _save(figure, path)


def reliability_figure(path: Path, y_true: np.ndarray, probabilities: np.ndarray, n_bins: int = 10) -> Path:
    """Reliability diagram of the top-class confidence."""
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == y_true).astype(int)
    figure, axes = plt.subplots(figsize=(4.5, 4.5))
    if 0 < correct.sum() < correct.size:
        accuracy, mean_confidence = calibration_curve(correct, confidence, n_bins=n_bins, strategy="uniform")
        axes.plot(mean_confidence, accuracy, marker="o", label="model")
    axes.plot([0, 1], [0, 1], color="0.7", linestyle="--", linewidth=1, label="perfect calibration")
    axes.set_xlabel("confidence")
    axes.set_ylabel("accuracy")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.legend(loc="upper left")
    axes.set_title("Reliability")
    return _save(figure, path)


def subgroup_figure(path: Path, y_true: np.ndarray, probabilities: np.ndarray, groups: Sequence[str],
                    class_names: Sequence[str], column: str, rows: Sequence[dict]) -> Path:
    """Every clip's score by subgroup, coloured by its reference class: the positive class's
    probability for a binary task, the reference class's otherwise. ``rows`` (from
    :func:`lungus.evaluate.subgroups.subgroup_metrics`, whose ``value`` each clip's group
    matches) name the groups in order and give the counts and AUCs written under each."""
    binary = probabilities.shape[1] == 2
    score = probabilities[:, 1] if binary else probabilities[np.arange(y_true.size), y_true]
    groups = np.asarray(groups)
    values = [row["value"] for row in rows]
    rng = np.random.default_rng(0)  # the same jitter every time the figure is drawn
    figure, axes = plt.subplots(figsize=(max(4.5, 1.1 * len(values) + 2.0), 4.2))
    colours = plt.get_cmap("tab10")
    for k, name in enumerate(class_names):
        offset = (k - (len(class_names) - 1) / 2) * 0.22
        label: str | None = f"reference: {name}"  # once per class in the legend
        for g, value in enumerate(values):
            chosen = (groups == value) & (y_true == k)
            if chosen.any():
                x = g + offset + rng.uniform(-0.08, 0.08, int(chosen.sum()))
                axes.scatter(x, score[chosen], s=14, alpha=0.75, color=colours(k), label=label)
                label = None
    if binary:
        axes.axhline(0.5, color="0.7", linestyle="--", linewidth=1)

    def caption(row: dict) -> str:
        text = f"{row['value']}\nn={row['n_clips']}"
        if binary:
            for key, short in (("auc_positives_vs_all_negatives", "pos"), ("auc_negatives_vs_all_positives", "neg")):
                if row.get(key) is not None:
                    text += f"\nAUC {short} {row[key]:.2f}"
        elif row.get("auc") is not None:
            text += f"\nAUC {row['auc']:.2f}"
        return text

    axes.set_xticks(range(len(values)), [caption(row) for row in rows], fontsize=8)
    axes.set_xlim(-0.6, len(values) - 0.4)
    axes.set_ylim(-0.03, 1.03)
    axes.set_xlabel(column)
    axes.set_ylabel(f"P({class_names[1]})" if binary else "P(reference class)")
    axes.legend(loc="lower right", fontsize=8)
    axes.set_title(f"Scores by {column}")
    return _save(figure, path)


def clip_evidence_figure(path: Path, values: dict[str, Sequence[float | None]], blines: np.ndarray,
                         severity: np.ndarray | None, metrics: dict) -> Path:
    """Each clip's evidence statistic (one row of panels per statistic) by its B-line label (left)
    and by its severity (right, when there is one): boxes with every clip on them. ``metrics``
    (lungus.evaluate.clip_evidence.clip_evidence_metrics) gives the AUC and rho in the titles."""
    columns = 1 if severity is None else 2
    figure, grid = plt.subplots(len(values), columns, figsize=(4.2 * columns, 2.6 * len(values)), squeeze=False)
    rng = np.random.default_rng(0)  # the same jitter every time the figure is drawn

    def strip(axes: plt.Axes, column: np.ndarray, groups: np.ndarray, names: Sequence[str]) -> None:
        chosen = [column[(groups == k) & ~np.isnan(column)] for k in range(len(names))]
        shown = [k for k, c in enumerate(chosen) if c.size]
        if shown:
            axes.boxplot([chosen[k] for k in shown], positions=shown, widths=0.5, showfliers=False,
                         medianprops={"color": "black"})
        for k in shown:
            axes.scatter(k + rng.uniform(-0.15, 0.15, chosen[k].size), chosen[k], s=10, alpha=0.6,
                         color=plt.get_cmap("tab10")(k))
        axes.set_xticks(range(len(names)), [f"{name}\nn={chosen[k].size}" for k, name in enumerate(names)],
                        fontsize=8)
        axes.set_xlim(-0.6, len(names) - 0.4)

    def stated(value: float | None, ci: list[float] | None) -> str:
        if value is None:
            return "undefined"
        return f"{value:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")

    for row, (name, column) in enumerate(values.items()):
        column = np.asarray([np.nan if v is None else float(v) for v in column], dtype=float)
        entry = metrics["statistics"][name]
        strip(grid[row, 0], column, np.asarray(blines), ["no B-lines", "B-lines"])
        grid[row, 0].set_ylabel(name, fontsize=9)
        grid[row, 0].set_title(f"AUC {stated(entry['auc'], entry['auc_ci'])}", fontsize=9)
        if severity is not None:
            strip(grid[row, 1], column, np.asarray(severity), list(LABEL_SCHEMES["lus4"]))
            grid[row, 1].set_title(f"Spearman rho {stated(entry.get('spearman'), entry.get('spearman_ci'))}",
                                   fontsize=9)
    grid[-1, 0].set_xlabel("clip label")
    if severity is not None:
        grid[-1, 1].set_xlabel("severity (0-3)")
    figure.suptitle(f"Segmenter evidence per clip: {metrics['n_clips']} clips, {metrics['n_patients']} patients")
    figure.tight_layout()
    return _save(figure, path)
