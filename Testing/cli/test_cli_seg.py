"""End to end: `lungus train --task seg` then `lungus evaluate` on held-out patients of the tiny
simulated collection (32x32 frames, a 4-channel U-Net: checks the files and their contents,
not the accuracy)."""

from __future__ import annotations

import csv
import json

import pytest
from PIL import Image

from lungus.cli import main
from lungus.data.manifests.manifest import Manifest

TINY = ["--task", "seg", "--model", "unet_small", "--model-arg", "width=4", "--model-arg", "levels=3",
        "--size", "32", "--frames", "2", "--epochs", "2", "--batch-size", "8", "--threads", "1", "--seed", "1"]


@pytest.fixture
def split_collection(tiny_collection, tmp_path):
    """Training and held-out manifests (absolute clip and mask paths) split by patient."""
    manifest = Manifest.load(tiny_collection)
    rows = []
    for i, row in enumerate(manifest.rows):
        rows.append({**row, "clip": str(manifest.clip_path(i)), "mask": str(manifest.resolve(i, "mask"))})
    held_out_patients = sorted({row["patient"] for row in rows})[:2]
    paths = {}
    for name, keep in (("train", False), ("heldout", True)):
        chosen = [row for row in rows if (row["patient"] in held_out_patients) == keep]
        path = tmp_path / f"{name}.csv"
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=manifest.columns)
            writer.writeheader()
            writer.writerows(chosen)
        paths[name] = (path, len(chosen))
    return paths


def test_train_then_evaluate_a_segmenter(split_collection, tmp_path, capsys):
    (train, _), (heldout, n_heldout) = split_collection["train"], split_collection["heldout"]
    run = tmp_path / "run"
    assert main(["train", "--manifest", str(train), "--out", str(run), *TINY]) == 0
    assert (run / "model.pt").is_file() and (run / "metrics.csv").is_file()

    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(run / "model.pt"), "--manifest", str(heldout), "--out", str(out),
                 "--n-boot", "20"]) == 0
    assert "dice_b_line" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_clips"] == n_heldout and metrics["n_patients"] == 2
    for key in ("dice_b_line", "iou_b_line", "count_mae", "loc_f1"):
        assert key in metrics and f"{key}_ci" in metrics
    with open(out / "predictions.csv") as handle:
        assert len(list(csv.DictReader(handle))) == n_heldout
    for figure in ("pixel_confusion.png", "overlay_montage.png"):
        with Image.open(out / figure) as image:
            assert image.format == "PNG"


def test_a_label_source_segmenters_cannot_use_is_a_one_line_error(split_collection, tmp_path, capsys):
    train, _ = split_collection["train"]
    code = main(["train", "--manifest", str(train), "--out", str(tmp_path / "run"), "--label-source",
                 "crowd-soft", *TINY])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert "annotations:RATER" in error and "\n" not in error


def test_annotations_outside_the_fan_stop_training_with_a_one_line_error(slicer_ultrasound_clip, tmp_path,
                                                                         capsys):
    """SlicerUltrasound's own annotation on a DICOM without an ultrasound region: read at one mm per pixel its
    lines fall outside the fan, and the clip is refused naming the file and the frame, not trained on as
    empty masks."""
    clip = slicer_ultrasound_clip(spacing_mm=None)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"clip,patient\n{clip},p1\n")
    code = main(["train", "--manifest", str(manifest), "--out", str(tmp_path / "run"), "--label-source",
                 "annotations", "--val-fraction", "0", *TINY])
    error = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in error and "Traceback" not in error
    assert f"{clip.with_name(clip.stem + '.tom.json')}: frame 0, points read with unit spacing" in error
    assert "lies outside the fan" in error
