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
) -> Path:
    """ROC curves: class 1 for a binary task, one-vs-rest per class otherwise.

    ``curves`` adds other models' probabilities (same clips) to one binary plot.
    """
    figure, axes = plt.subplots(figsize=(4.5, 4.5))
    if probabilities.shape[1] == 2:
        for label, p in {"model": probabilities, **(curves or {})}.items():
            RocCurveDisplay.from_predictions(y_true, p[:, 1], name=label, ax=axes)
    else:
        for k, name in enumerate(class_names):
            if 0 < (y_true == k).sum() < y_true.size:
                RocCurveDisplay.from_predictions(y_true == k, probabilities[:, k], name=f"{name} vs rest", ax=axes)
    axes.plot([0, 1], [0, 1], color="0.7", linestyle="--", linewidth=1)
    axes.set_title("ROC")
    return _save(figure, path)


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
