"""A segmenter taught by clip labels (--label-source weak:SOURCE): the weak loss, training on clips
without masks, and cross-validation scored by clip-level evidence.

The fixture: 64x64 .npy clips of 6 frames with a linear-probe image region (rows 4-59, columns
6-57) of speckle and a bright pleural line; clips labelled "present" show one bright 5-column
B-line band below the pleura in every frame, clips labelled "absent" two horizontal A-lines.
A manifest (clip, patient, bline2) without a mask column; each patient has one of each.
"""

import csv
import json

import numpy as np
import pytest
import torch

from lungus.data.labels.schemes import B_LINE, CONFLUENT
from lungus.data.labels.weak_masks import BLINES_SOMEWHERE, NOT_BLINE
from lungus.data.pipeline.clip_preparation import ClipCache, Preprocessing
from lungus.errors import LungUSError
from lungus.io import write_clip
from lungus.io.clip import Clip
from lungus.models.model_file import load_model_file
from lungus.predict.card import predictor_from_card
from lungus.train.config import TrainConfig
from lungus.train.cv import cross_validate
from lungus.train.loop import fit
from lungus.train.losses import DiceCELoss, WeakBLineLoss, balanced_weak_weights

TINY_WEAK_SEG = {"task": "seg", "model": "unet_small", "model_args": {"width": 4, "levels": 3}, "size": (32, 32),
                 "batch_size": 8, "lr": 1e-2, "threads": 1, "augment": False, "label_source": "weak:bline2",
                 "frames": 3}


def write_labelled_clip(path, blines: bool, seed: int):
    rng = np.random.default_rng(seed)
    frames = np.zeros((6, 64, 64), np.uint8)
    frames[:, 4:60, 6:58] = rng.integers(30, 60, (6, 56, 52))
    frames[:, 14:16, 6:58] = 220
    if blines:
        column = 12 + (seed * 7) % 36
        frames[:, 16:60, column : column + 5] = 180
    else:
        frames[:, 28:30, 6:58] = 150
        frames[:, 42:44, 6:58] = 120
    return write_clip(Clip(frames, fps=10.0), path)


@pytest.fixture(scope="module")
def labelled_clips(tmp_path_factory):
    """The manifest of 12 clips, 6 patients (one clip with B-lines and one without each)."""
    folder = tmp_path_factory.mktemp("weak_labels")
    lines = ["clip,patient,bline2"]
    for i in range(12):
        blines = i % 2 == 0
        write_labelled_clip(folder / f"scan{i}.npy", blines, seed=i)
        lines.append(f"scan{i}.npy,p{i // 2},{'present' if blines else 'absent'}")
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / "manifest.csv"


def logits_with_bline(value: float, shape=(1, 6, 8, 8)) -> torch.Tensor:
    logits = torch.zeros(shape)
    logits[:, B_LINE] = value
    return logits


def test_weak_loss_punishes_bline_probability_on_clips_without_blines():
    masks = torch.full((1, 8, 8), NOT_BLINE)
    loss = WeakBLineLoss()
    assert loss(logits_with_bline(4.0), masks) > loss(logits_with_bline(-4.0), masks) + 1.0


def test_weak_loss_asks_for_some_bline_pixels_on_clips_with_blines():
    masks = torch.full((1, 8, 8), BLINES_SOMEWHERE)
    loss = WeakBLineLoss(top_share=0.05)
    nowhere = logits_with_bline(-4.0)
    one_column = nowhere.clone()
    one_column[:, B_LINE, :, 3] = 6.0  # a B-line in one column is enough
    assert loss(one_column, masks) < 0.1 < loss(nowhere, masks)


def test_weak_loss_counts_confluent_as_bline():
    masks = torch.full((1, 8, 8), NOT_BLINE)
    logits = torch.zeros((1, 6, 8, 8))
    logits[:, CONFLUENT] = 4.0
    assert WeakBLineLoss()(logits, masks) > 1.0


def test_weak_loss_is_zero_without_weak_pixels():
    assert float(WeakBLineLoss()(logits_with_bline(4.0), torch.zeros((1, 8, 8), dtype=torch.long))) == 0.0


def test_weak_class_weights_weigh_the_frames_of_each_label():
    masks = torch.stack([torch.full((8, 8), NOT_BLINE), torch.full((8, 8), BLINES_SOMEWHERE)])
    logits = logits_with_bline(4.0, shape=(2, 6, 8, 8))  # right on the B-line frame, wrong on the other
    equal = WeakBLineLoss()(logits, masks)
    negatives_count_more = WeakBLineLoss(class_weights=(3.0, 1.0))(logits, masks)
    assert negatives_count_more > equal


def test_balanced_weak_weights_are_inverse_label_frequencies():
    assert balanced_weak_weights([1, 1, 1, 0]) == (2.0, 2 / 3)
    assert balanced_weak_weights([1, 1]) is None


def test_dense_terms_ignore_weak_pixels():
    masks = torch.full((2, 8, 8), NOT_BLINE)
    masks[1] = BLINES_SOMEWHERE
    dense_only = DiceCELoss(6, weak_weight=0.0)
    assert float(dense_only(torch.randn((2, 6, 8, 8)), masks)) == 0.0


def test_segmenter_trains_on_clip_labels_alone(labelled_clips, tmp_path):
    config = TrainConfig(manifest=str(labelled_clips), out=str(tmp_path / "run"), epochs=12, val_fraction=0,
                         **TINY_WEAK_SEG)
    result = fit(config)
    loaded = load_model_file(result.model_path)
    predictor = predictor_from_card(loaded.card)
    model = loaded.model.eval()
    preprocessing = Preprocessing.from_card(loaded.card.preprocessing)
    cache = ClipCache(None)
    share = {}
    for i in (0, 1):  # scan0 has B-lines, scan1 none
        prepared = cache.get(labelled_clips.parent / f"scan{i}.npy", preprocessing)
        masks = predictor.predict_masks(model, prepared.frames, torch.device("cpu"), prepared.fan.mask)
        share[i] = float(np.isin(masks, (B_LINE, CONFLUENT)).mean())
    assert share[0] > 0.01 and share[1] < share[0] / 4


def test_cross_validation_scores_the_held_out_clips_by_their_evidence(labelled_clips, tmp_path):
    config = TrainConfig(manifest=str(labelled_clips), out=str(tmp_path / "cv"), epochs=12, val_fraction=0,
                         folds=2, **TINY_WEAK_SEG)
    result = cross_validate(config, log=lambda _line: None)
    written = json.loads((tmp_path / "cv" / "clip_evidence.json").read_text())
    assert written["n_clips"] == 12 and written["n_patients"] == 6
    assert [f["n_clips"] for f in result.fold_metrics] == [6, 6]
    assert result.metrics["auc"] == written["statistics"]["bline_count_max"]["auc"] > 0.8
    with open(tmp_path / "cv" / "clip_evidence.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 12
    for k in (0, 1):
        assert (tmp_path / "cv" / f"fold{k}" / "test" / "evidence.json").is_file()


def test_cross_validation_resumes_finished_folds_from_their_evidence(labelled_clips, tmp_path):
    config = TrainConfig(manifest=str(labelled_clips), out=str(tmp_path / "cv"), epochs=2, val_fraction=0,
                         folds=2, **TINY_WEAK_SEG)
    first = cross_validate(config, log=lambda _line: None)
    (tmp_path / "cv" / "fold0" / "model.pt").unlink()  # a finished fold is not trained again
    lines = []
    again = cross_validate(config, resume=True, log=lines.append)
    assert "fold 1/2: already done" in lines and "fold 2/2: already done" in lines
    assert again.metrics["statistics"] == first.metrics["statistics"]


def test_clips_without_mask_or_label_are_left_out(labelled_clips, tmp_path):
    rows = labelled_clips.read_text().splitlines()
    (tmp_path / "manifest.csv").write_text("\n".join([rows[0]] + [line.rsplit(",", 1)[0] + "," for line in rows[1:]])
                                           + "\n")
    for i in range(12):
        (tmp_path / f"scan{i}.npy").symlink_to(labelled_clips.parent / f"scan{i}.npy")
    config = TrainConfig(manifest=str(tmp_path / "manifest.csv"), out=str(tmp_path / "run"), epochs=1,
                         val_fraction=0, **TINY_WEAK_SEG)
    with pytest.raises(LungUSError, match="no clip has a mask file or a weak:bline2 clip label"):
        fit(config)


def test_segmenter_masks_cannot_be_cross_validated(labelled_clips, tmp_path):
    config = TrainConfig(manifest=str(labelled_clips), out=str(tmp_path / "cv"), folds=2,
                         **{**TINY_WEAK_SEG, "label_source": "truth"})
    with pytest.raises(LungUSError, match="weak:SOURCE"):
        cross_validate(config)


def test_train_only_clips_train_in_every_fold_and_are_never_scored(labelled_clips, tiny_collection, tmp_path):
    from lungus.data.manifests.merge import merge_manifests

    joint = merge_manifests(tmp_path / "joint.csv", [labelled_clips], [tiny_collection])
    joint.save()
    config = TrainConfig(manifest=str(tmp_path / "joint.csv"), out=str(tmp_path / "cv"), epochs=1, val_fraction=0,
                         folds=2, **TINY_WEAK_SEG)
    lines = []
    result = cross_validate(config, log=lines.append)
    simulated = sum(joint.train_only())
    assert [f["n_clips"] for f in result.fold_metrics] == [6, 6]
    scored = json.loads((tmp_path / "cv" / "clip_evidence.json").read_text())
    assert scored["n_clips"] == 12
    assert sum(f"seg: {6 + simulated} training clips" in line for line in lines) == 2
