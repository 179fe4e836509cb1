"""Writing a segmenter's evaluation: metrics.json, per-clip and per-frame CSVs, and figures.

- ``metrics.json``: the keys of docs/architecture.md#evaluation-outputs: ``dice_<class>``, ``iou_<class>``, ``count_mae`` and
  ``loc_f1``, each with a ``_ci`` (95 %, patient bootstrap), ``n_clips``, ``n_patients``.
  Localisation F1 matches predicted and true B-line positions one to one within a tolerance
  of ``loc_f1_tolerance_share`` (5 %) of the fan's lateral span
  (lungus.data.labels.blines.POSITION_TOLERANCE_SHARE): about 3.5 degrees for a 70-degree sector,
  12.8 pixels for a 256-pixel-wide linear image.
- ``predictions.csv``: one row per clip: Dice and IoU of the B-line class, count error,
  localisation F1, and the clip's B-line summary (count, frames with B-lines, BLAS) as
  predicted and as true (``true_`` columns).
- ``frames.csv``: one row per scored frame: predicted and true B-line count and BLAS.
- ``pixel_confusion.png``: the pixel confusion matrix, each true class's row normalised.
- ``overlay_montage.png``: frames beside their true and predicted masks in the colours of docs/architecture.md#segmentation-classes
  colours: the clips with the most B-lines (at their frame with the most), then the clips
  whose counts are furthest off (at their worst frame).

``predictions`` are those of :func:`lungus.predict.eval_sets.segment_eval_set`: dicts with
``clip``, ``patient``, ``predicted`` and ``truth`` (uint8 (T, H, W) class ids),
``predicted_analysis`` and ``true_analysis`` (lungus.data.labels.blines.MaskAnalysis), and optionally
``frames`` (the clip frame of each scored frame) and ``images`` ({frame: uint8 (H, W)}).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lungus.atomic import atomic_write_text
from lungus.data.labels.blines import POSITION_TOLERANCE_SHARE
from lungus.data.labels.schemes import B_LINE, CONFLUENT, SEG_CLASSES
from lungus.evaluate.report import write_json
from lungus.evaluate.seg_metrics import (
    SegmentationTally,
    normalised_pixel_confusion,
    segmentation_metrics,
    tally_clip,
)

MONTAGE_CLIPS = 6
ANY_BLINE = (B_LINE, CONFLUENT)
LOC_F1_TOLERANCE = (
    f"{POSITION_TOLERANCE_SHARE:.0%} of the fan's lateral span (degrees about the apex for sector fans, "
    "pixels for linear images), one-to-one matching"
)


def tally_prediction(prediction: dict[str, Any]) -> SegmentationTally:
    """One evaluated clip reduced to the sums every segmentation metric is a ratio of."""
    return tally_clip(
        prediction["predicted"],
        prediction["truth"],
        prediction["predicted_analysis"].positions,
        prediction["true_analysis"].positions,
        tolerance=prediction["true_analysis"].position_tolerance,
    )


def _number(value: Any, digits: int = 6) -> Any:
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        return round(float(value), digits)
    return value


def _csv_text(header: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(header))
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _number(row.get(key)) for key in header})
    return buffer.getvalue()


CLIP_COLUMNS = (
    "clip", "patient", "n_frames", "dice_b_line", "iou_b_line", "dice_pleural_line", "count_mae", "loc_f1",
    "bline_count_mean", "true_bline_count_mean", "bline_count_max", "true_bline_count_max",
    "frames_with_blines", "true_frames_with_blines", "blas_mean", "true_blas_mean", "blas_max", "true_blas_max",
    "top_frame", "true_top_frame",
)
FRAME_COLUMNS = ("clip", "frame", "bline_count", "true_bline_count", "blas", "true_blas", "confluent_share",
                 "true_confluent_share")


def _frame_numbers(prediction: dict[str, Any]) -> np.ndarray:
    n = prediction["predicted"].shape[0]
    return np.asarray(prediction.get("frames", np.arange(n)))


def clip_rows(predictions: Sequence[dict[str, Any]], tallies: Sequence[SegmentationTally]) -> list[dict[str, Any]]:
    """One predictions.csv row per clip."""
    rows = []
    for p, tally in zip(predictions, tallies):
        scores = segmentation_metrics([tally], [p["patient"]], n_boot=0)
        numbers = _frame_numbers(p)
        row: dict[str, Any] = {"clip": p["clip"], "patient": p["patient"], "n_frames": tally.n_frames}
        for key in ("dice_b_line", "iou_b_line", "dice_pleural_line", "count_mae", "loc_f1"):
            row[key] = scores.get(key)
        for prefix, analysis in (("", p["predicted_analysis"]), ("true_", p["true_analysis"])):
            for key, value in analysis.clip_summary().items():
                if key == "top_frame":
                    value = None if value is None else int(numbers[value])
                row[prefix + key] = value
        rows.append(row)
    return rows


def frame_rows(predictions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One frames.csv row per scored frame."""
    rows = []
    for p in predictions:
        predicted, truth = p["predicted_analysis"], p["true_analysis"]
        for t, number in enumerate(_frame_numbers(p)):
            rows.append({
                "clip": p["clip"], "frame": int(number),
                "bline_count": int(predicted.bline_count[t]), "true_bline_count": int(truth.bline_count[t]),
                "blas": predicted.blas[t], "true_blas": truth.blas[t],
                "confluent_share": float(predicted.confluent_share[t]),
                "true_confluent_share": float(truth.confluent_share[t]),
            })
    return rows


def pixel_confusion_figure(path: Path, tallies: Sequence[SegmentationTally]) -> Path:
    """Row-normalised pixel confusion matrix (true class x predicted class) as a PNG."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    from lungus.evaluate.figures import _save

    confusion = normalised_pixel_confusion(tallies)
    names = [c.name for c in SEG_CLASSES]
    true_pixels = sum(t.pixel_confusion for t in tallies).sum(axis=1)
    figure, axes = plt.subplots(figsize=(6.8, 5.6))
    ConfusionMatrixDisplay(confusion, display_labels=names).plot(
        ax=axes, cmap="Blues", values_format=".2f", colorbar=True, im_kw={"vmin": 0.0, "vmax": 1.0}
    )
    axes.set_yticks(range(len(names)), [f"{name}\n({int(n):,} px)" for name, n in zip(names, true_pixels)],
                    fontsize=8)
    plt.setp(axes.get_xticklabels(), rotation=35, ha="right")
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    pixels = int(sum(t.pixel_confusion.sum() for t in tallies))
    axes.set_title(f"Pixel confusion (rows: share of each true class)\n{pixels:,} pixels, {len(tallies)} clips",
                   fontsize=10)
    return _save(figure, path)


def _montage_choice(predictions: Sequence[dict[str, Any]], n_clips: int) -> list[tuple[dict[str, Any], int, str]]:
    """(prediction, frame, why) triples: the clips with the most true B-lines, each at its frame
    with the most, then the clips whose counts are furthest off, at their worst frame."""
    def most(p: dict[str, Any]) -> tuple:
        truth = p["true_analysis"]
        return (-truth.bline_count_max, -(truth.blas_max or 0.0), str(p["clip"]))

    def shown(p: dict[str, Any], candidates: Sequence[int | None]) -> int:
        images = p.get("images") or {}
        return int(next((t for t in candidates if t is not None and (not images or t in images)), 0))

    n_worst = n_clips // 3
    chosen = [(p, shown(p, [p["true_analysis"].top_frame, p["predicted_analysis"].top_frame, *(p.get("images") or {})]),
               "most B-lines") for p in sorted(predictions, key=most)[: n_clips - n_worst]]
    taken = {id(p) for p, _, _ in chosen}

    def error(p: dict[str, Any]) -> np.ndarray:
        return np.abs(p["predicted_analysis"].bline_count.astype(int) - p["true_analysis"].bline_count.astype(int))

    rest = sorted((p for p in predictions if id(p) not in taken and error(p).max() > 0),
                  key=lambda p: (-error(p).mean(), str(p["clip"])))
    for p in rest[:n_worst]:
        errors = error(p)
        images = p.get("images") or {}
        order = [int(t) for t in np.argsort(-errors, kind="stable") if not images or int(t) in images]
        chosen.append((p, order[0] if order else shown(p, []), "count furthest off"))
    return chosen


def _frame_caption(who: str, analysis: Any, t: int) -> str:
    blas = analysis.blas[t]
    return f"{who}: {int(analysis.bline_count[t])} B-line(s)" + ("" if blas is None else f", BLAS {blas:.0f}%")


def overlay_montage_figure(path: Path, predictions: Sequence[dict[str, Any]], n_clips: int = MONTAGE_CLIPS) -> Path:
    """Rows of (frame, true masks, predicted masks) for the clips with the most B-lines."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from lungus.data.labels.mask_colours import colour_mask
    from lungus.evaluate.figures import _save

    chosen = _montage_choice(predictions, n_clips)
    height = 2.9 * len(chosen) + 0.9  # inches: rows, then the title and legend bands
    figure, axes = plt.subplots(len(chosen), 3, figsize=(8.4, height), squeeze=False)
    for row, (p, t, why) in enumerate(chosen):
        truth, predicted = p["truth"][t], p["predicted"][t]
        image = (p.get("images") or {}).get(t)
        if image is None:
            image = np.zeros(truth.shape, np.uint8)
        # Discrete and confluent together: is the B-line area where it should be?
        true_any, predicted_any = np.isin(truth, ANY_BLINE), np.isin(predicted, ANY_BLINE)
        dice = 2 * (true_any & predicted_any).sum() / max(1, true_any.sum() + predicted_any.sum())
        number = int(_frame_numbers(p)[t])
        panels = (
            (image, f"{p['clip']}\nframe {number}, patient {p['patient']} ({why})"),
            (colour_mask(image, truth), _frame_caption("truth", p["true_analysis"], t)),
            (colour_mask(image, predicted), _frame_caption("predicted", p["predicted_analysis"], t)
             + (f"\nDice (any B-line) {dice:.2f}" if (true_any | predicted_any).any() else "")),
        )
        for column, (picture, title) in enumerate(panels):
            axis = axes[row, column]
            axis.imshow(picture, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            axis.set_title(title, fontsize=8)
            axis.axis("off")
    handles = [Patch(color=np.asarray(c.rgb) / 255.0, label=c.name) for c in SEG_CLASSES if c.rgb is not None]
    figure.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    figure.suptitle("Image, truth, prediction: the clips with the most B-lines, then the largest count errors",
                    fontsize=10, y=1 - 0.15 / height)
    # Fixed margins (tight_layout costs a second per figure); _save trims the border.
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.4 / height, top=1 - 0.85 / height, wspace=0.05,
                           hspace=0.32)
    return _save(figure, path)


def write_segmentation_report(out: str | Path, predictions: Sequence[dict[str, Any]],
                              metrics: dict[str, Any]) -> dict[str, Path]:
    """DIR/metrics.json, predictions.csv, frames.csv, pixel_confusion.png, overlay_montage.png.

    Figures need at least one evaluated clip; with none only metrics.json and the (empty)
    CSVs are written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    predictions = list(predictions)
    tallies = [tally_prediction(p) for p in predictions]
    metrics = {**metrics, "loc_f1_tolerance_share": POSITION_TOLERANCE_SHARE, "loc_f1_tolerance": LOC_F1_TOLERANCE}
    paths = {
        "metrics": write_json(out / "metrics.json", metrics),
        "predictions": atomic_write_text(out / "predictions.csv", _csv_text(CLIP_COLUMNS, clip_rows(predictions, tallies))),
        "frames": atomic_write_text(out / "frames.csv", _csv_text(FRAME_COLUMNS, frame_rows(predictions))),
    }
    if predictions:
        paths["pixel_confusion"] = pixel_confusion_figure(out / "pixel_confusion.png", tallies)
        paths["overlay_montage"] = overlay_montage_figure(out / "overlay_montage.png", predictions)
    return paths
