"""Segmentation report: metrics.json keys, per-clip/per-frame CSVs and the two figures, on masks
of known geometry (64x64 frames, full-frame fan, B-lines as vertical bands below a pleural line)."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from lungus.data.labels.blines import analyse_masks
from lungus.data.labels.schemes import B_LINE, PLEURA
from lungus.evaluate.seg_report import write_segmentation_report
from lungus.evaluate.summaries import segmentation_summary

SIZE = 64


def clip_masks(columns_per_frame):
    """(T, 64, 64) masks: pleura at row 10, a 4-px B-line band from row 11 down at each column."""
    masks = np.zeros((len(columns_per_frame), SIZE, SIZE), np.uint8)
    masks[:, 10, 4:60] = PLEURA
    for t, columns in enumerate(columns_per_frame):
        for column in columns:
            masks[t, 11:, column : column + 4] = B_LINE
    return masks


def prediction(index, clip, patient, predicted, truth):
    images = np.full(truth.shape, 60, np.uint8) + (truth == B_LINE).astype(np.uint8) * 120
    return {"index": index, "clip": clip, "patient": patient, "frames": np.arange(truth.shape[0]),
            "predicted": predicted, "truth": truth, "predicted_analysis": analyse_masks(predicted),
            "true_analysis": analyse_masks(truth), "images": {t: images[t] for t in range(truth.shape[0])}}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("seg_report")
    perfect = clip_masks([[20], [20, 40], [40]])
    truth = clip_masks([[12, 30, 48], [30], []])
    missed = clip_masks([[12, 30], [30], [50]])  # frame 0 misses one, frame 2 invents one
    predictions = [prediction(0, "clips/a.mp4", "P1", perfect, perfect),
                   prediction(1, "clips/b.mp4", "P2", missed, truth)]
    metrics, predictions = segmentation_summary(predictions, n_boot=50)
    paths = write_segmentation_report(tmp_path / "eval", predictions, metrics)
    return paths, metrics


def test_metrics_json_has_the_design_keys_with_cis(report):
    paths, _ = report
    metrics = json.loads(paths["metrics"].read_text())
    for key in ("dice_b_line", "iou_b_line", "dice_pleural_line", "count_mae", "loc_f1"):
        assert isinstance(metrics[key], float)
        low, high = metrics[f"{key}_ci"]
        assert low <= metrics[key] <= high
    assert metrics["n_clips"] == 2 and metrics["n_patients"] == 2
    assert metrics["loc_f1_tolerance_share"] == 0.05
    assert "lateral span" in metrics["loc_f1_tolerance"]
    # Counts: clip a exact (3 frames), clip b off by 1, 0, 1 -> 2 errors over 6 frames.
    assert metrics["count_mae"] == pytest.approx(2 / 6)


def test_per_clip_csv_scores_each_clip(report):
    paths, _ = report
    with open(paths["predictions"]) as handle:
        rows = {row["clip"]: row for row in csv.DictReader(handle)}
    assert float(rows["clips/a.mp4"]["dice_b_line"]) == pytest.approx(1.0)
    assert float(rows["clips/a.mp4"]["count_mae"]) == 0.0
    b = rows["clips/b.mp4"]
    assert float(b["count_mae"]) == pytest.approx(2 / 3)
    # B-line pixels: truth 4 bands, prediction 4 bands, 3 shared (53 rows x 4 columns each).
    assert float(b["dice_b_line"]) == pytest.approx(2 * 3 / (4 + 4))
    assert b["patient"] == "P2"
    assert int(b["true_bline_count_max"]) == 3 and int(b["bline_count_max"]) == 2
    assert float(b["true_blas_mean"]) > 0 and b["true_top_frame"] == "0"


def test_frames_csv_has_one_row_per_frame(report):
    paths, _ = report
    with open(paths["frames"]) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6
    first_b = next(r for r in rows if r["clip"] == "clips/b.mp4" and r["frame"] == "0")
    assert (first_b["bline_count"], first_b["true_bline_count"]) == ("2", "3")


@pytest.mark.parametrize("name", ["pixel_confusion", "overlay_montage"])
def test_figures_are_drawn(report, name):
    paths, _ = report
    with Image.open(paths[name]) as image:
        assert image.format == "PNG"
        assert min(image.size) > 300
        pixels = np.asarray(image.convert("RGB")).astype(int)
    assert pixels.std() > 10
    if name == "overlay_montage":  # the B-line green of SEG_CLASSES is painted
        green = (pixels[..., 1] > 150) & (pixels[..., 0] < 120) & (pixels[..., 2] < 120)
        assert green.sum() > 500


def test_no_clips_writes_metrics_only(tmp_path):
    paths = write_segmentation_report(tmp_path / "empty", [], {"n_clips": 0, "n_patients": 0})
    assert set(paths) == {"metrics", "predictions", "frames"}
    assert json.loads(paths["metrics"].read_text())["n_clips"] == 0
