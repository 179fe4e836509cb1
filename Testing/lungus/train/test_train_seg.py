"""Segmenter training: the loop on simulated masks, frame sampling, the Dice + CE loss with an
ignore index and label classes, and AnnotateUltrasound JSON as the label source.

The annotation fixture: 64x64 clips (.npy) with a linear-probe image region (rows 4-59,
columns 6-57), a bright pleural line at rows 14-15 and one bright 5-column B-line band per
frame; beside each clip ``<clip>.tom.json`` in AnnotateUltrasound's schema (rectangle fan,
LPS points = pixel columns/rows) draws the pleura and the B-line on frames 0-3 only.
"""

import csv
import json

import numpy as np
import pytest
import torch

from lungus.data.labels.annotation_labels import IGNORE_INDEX, annotation_mask_file, parse_annotation_source
from lungus.data.labels.schemes import B_LINE, CONFLUENT, PLEURA, SEG_CLASSES
from lungus.errors import LungUSError
from lungus.io import write_clip
from lungus.io.clip import Clip
from lungus.models.model_file import load_model_file
from lungus.predict.card import predictor_from_card
from lungus.predict.masks import CONFLUENT_LOGIT_OFFSET, MIN_BLINE_SHARE
from lungus.train.config import TrainConfig
from lungus.train.loop import fit
from lungus.train.losses import DiceCELoss

TINY_SEG = {"task": "seg", "model": "unet_small", "model_args": {"width": 4, "levels": 3}, "size": (32, 32),
            "batch_size": 8, "lr": 1e-2, "threads": 1, "augment": False}

N_FRAMES, ANNOTATED = 6, 4
FAN = {"mask_type": "rectangle", "rectangle_left": 6, "rectangle_right": 58, "rectangle_top": 4,
       "rectangle_bottom": 60, "image_size_rows": 64, "image_size_cols": 64}


def band_column(clip: int, frame: int) -> int:
    return 10 + (7 * clip + 8 * frame) % 40


def write_annotated_clip(folder, index: int, raters=("tom",)):
    rng = np.random.default_rng(index)
    frames = np.zeros((N_FRAMES, 64, 64), np.uint8)
    frames[:, 4:60, 6:58] = rng.integers(30, 60, (N_FRAMES, 56, 52))
    frames[:, 14:16, 6:58] = 220
    for t in range(N_FRAMES):
        c = band_column(index, t)
        frames[t, 16:60, c : c + 5] = 170
    clip = write_clip(Clip(frames, fps=10.0), folder / f"scan{index}.npy")
    for rater in raters:
        annotations = [{
            "frame_number": t,
            "coordinate_space": "LPS",
            "pleura_lines": [{"rater": rater, "line": {"points": [[6, 14, 0], [57, 14, 0]]}}],
            "b_lines": [{"rater": rater, "line": {"points": [[band_column(index, t), 30, 0],
                                                            [band_column(index, t) + 4, 30, 0]]}}],
        } for t in range(ANNOTATED)]
        record = {"SOPInstanceUID": f"1.2.3.{index}", "labels": ["B-lines/present"], **FAN,
                  "frame_annotations": annotations}
        (folder / f"scan{index}.{rater}.json").write_text(json.dumps(record), encoding="utf-8")
    return clip


@pytest.fixture
def annotated_manifest(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    rows = [{"clip": f"clips/{write_annotated_clip(folder, i).name}", "patient": f"P{i // 2}"} for i in range(6)]
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["clip", "patient"])
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def test_seg_training_learns_and_writes_a_segmenter(tiny_collection, tmp_path):
    config = TrainConfig(manifest=str(tiny_collection), out=str(tmp_path / "run"), epochs=6, frames=4,
                         val_fraction=0.25, seed=2, **TINY_SEG)
    result = fit(config, log=lambda _m: None)
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < 0.8 * losses[0]
    assert "val_dice_b_line" in result.history[-1]
    card = load_model_file(result.model_path).card
    assert card.task == "seg" and card.label_source == "truth"
    assert card.class_names == [c.name for c in SEG_CLASSES]
    assert "label_classes" not in card.extra
    task = predictor_from_card(card)
    assert task.min_bline_share == MIN_BLINE_SHARE and task.logit_offsets[CONFLUENT] == CONFLUENT_LOGIT_OFFSET
    assert card.training_data["frames"] == 8 * card.training_data["clips"]  # 8-frame clips


def test_frames_per_clip_are_stratified_and_replayable(tiny_collection, tmp_path):
    from lungus.data.manifests.manifest import Manifest
    from lungus.data.pipeline.training_sets import segmentation_sets
    from lungus.train.setup import training_input

    config = TrainConfig(manifest=str(tiny_collection), out=str(tmp_path / "run"), frames=2, **TINY_SEG)
    manifest = Manifest.load(tiny_collection)
    train, _, _ = segmentation_sets(manifest, "truth", [0, 1, 2], [], [], training_input(config), log=lambda _m: None)
    assert len(train) == 6

    def picks(dataset, epoch):
        dataset.set_epoch(epoch)
        return [dataset.frame_at(i, dataset.rng(i)) for i in range(len(dataset))]

    first = picks(train, 0)
    assert [clip for clip, _ in first] == [0, 0, 1, 1, 2, 2]
    assert all(t < 4 for _, t in first[0::2]) and all(t >= 4 for _, t in first[1::2])  # one per half
    assert picks(train, 0) == first and picks(train, 1) != first
    item = train[3]
    assert item["image"].shape == item["mask"].shape == (32, 32) and item["mask"].dtype == torch.int64


def test_dice_ce_ignores_unlabelled_pixels():
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 8, 8, requires_grad=True)
    masks = torch.randint(0, 6, (2, 8, 8))
    masks[:, :4] = IGNORE_INDEX
    other = masks.clone()
    loss = DiceCELoss(6)
    reference = loss(logits, masks)
    reference.backward()
    assert torch.isfinite(reference)
    assert logits.grad[:, :, :4].abs().max() == 0  # ignored pixels get no gradient
    changed = logits.detach().clone()
    changed[:, :, :4] += 5 * torch.randn(2, 6, 4, 8)
    assert loss(changed, other) == pytest.approx(reference.item())
    everything_ignored = torch.full((2, 8, 8), IGNORE_INDEX)
    assert loss(logits, everything_ignored).item() == 0.0


def test_dice_ce_with_label_classes_leaves_other_classes_alone():
    logits = torch.randn(2, 6, 8, 8, requires_grad=True)
    masks = torch.randint(0, 2, (2, 8, 8)) * B_LINE  # background and B-line only
    DiceCELoss(6, label_classes=(0, PLEURA, B_LINE))(logits, masks).backward()
    untrained = [c for c in range(6) if c not in (0, PLEURA, B_LINE)]
    assert logits.grad[:, untrained].abs().max() == 0
    assert logits.grad[:, B_LINE].abs().max() > 0
    with pytest.raises(ValueError, match="label_classes"):
        DiceCELoss(6, label_classes=(7,))


def test_annotation_source_names():
    assert parse_annotation_source("annotations") == (None, "majority")
    assert parse_annotation_source("annotations-staple") == (None, "staple")
    assert parse_annotation_source("annotations:Tom") == ("tom", "majority")
    assert parse_annotation_source("truth") is None
    with pytest.raises(LungUSError, match="name the rater"):
        parse_annotation_source("annotations:")


def test_annotation_json_becomes_labels_with_unannotated_frames_ignored(tmp_path):
    clip = write_annotated_clip(tmp_path, 1, raters=("tom", "sarah"))
    labels = np.load(annotation_mask_file(clip, tmp_path / "cache"))
    assert labels.shape == (N_FRAMES, 64, 64)
    assert (labels[ANNOTATED:] == IGNORE_INDEX).all()
    assert set(np.unique(labels[:ANNOTATED]).tolist()) == {0, PLEURA, B_LINE}
    for t in range(ANNOTATED):
        c = band_column(1, t)
        rows, cols = np.nonzero(labels[t] == B_LINE)
        assert (cols.min(), cols.max()) == (c, c + 4)  # the drawn line's columns
        assert rows.min() >= 15 and rows.max() == 59  # from the pleura to the bottom of the fan
        assert (labels[t, 14, 6:58] == PLEURA).all()
    assert (labels[0, :, :6] == 0).all()  # outside the fan
    assert np.array_equal(np.load(annotation_mask_file(clip, tmp_path / "cache", rater="sarah")), labels)
    with pytest.raises(LungUSError, match="rater 'ann'"):
        annotation_mask_file(clip, tmp_path / "cache", rater="ann")
    with pytest.raises(LungUSError, match="no AnnotateUltrasound annotations"):
        annotation_mask_file(write_clip(Clip(np.zeros((2, 40, 40), np.uint8)), tmp_path / "bare.npy"),
                             tmp_path / "cache")


def test_training_from_annotations(annotated_manifest, tmp_path):
    config = TrainConfig(manifest=str(annotated_manifest), out=str(tmp_path / "run"), epochs=10, frames=8,
                         label_source="annotations", val_fraction=0.34, seed=0, **TINY_SEG)
    result = fit(config, log=lambda _m: None)
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < 0.8 * losses[0]
    loaded = load_model_file(result.model_path)
    assert loaded.card.label_source == "annotations"
    assert loaded.card.extra["label_classes"] == [0, PLEURA, B_LINE]
    assert loaded.card.training_data["frames"] == ANNOTATED * loaded.card.training_data["clips"]
    assert result.val_metrics["n_frames"] == ANNOTATED * result.val_metrics["n_clips"]  # annotated frames only
    task = predictor_from_card(loaded.card)
    frames = torch.randint(0, 255, (3, 32, 32), dtype=torch.uint8).numpy()
    predicted = task.predict_masks(loaded.model.eval(), frames, torch.device("cpu"))
    assert set(np.unique(predicted).tolist()) <= {0, PLEURA, B_LINE}
