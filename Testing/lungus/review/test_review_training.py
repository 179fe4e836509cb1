"""`lungus train` straight from a review folder, no conversion (docs/review.md#training-from-reviews).

The simulator's truth stands in for the reviewer on the tiny simulated collection (16 clips, 64x64,
8 frames); training is one epoch of a 4-channel network at 32x32, so these check the plumbing, not
the accuracy.
"""

from __future__ import annotations

import numpy as np
import pytest

from lungus.cli import main
from lungus.data.labels.annotation_labels import IGNORE_INDEX
from lungus.data.labels.label_images import read_label_masks
from lungus.data.manifests.manifest import Manifest
from lungus.review.store import ReviewFolder, Verdict

pytestmark = pytest.mark.torch

REVIEWED_FRAMES = 3  # per clip: frames 0-2 corrected, the other 5 left unreviewed (255)
CLASSIFIER = ["--task", "bline3", "--model", "frame_cnn", "--model-arg", "width=4", "--size", "32", "--frames", "4",
              "--epochs", "1", "--batch-size", "8", "--threads", "1", "--seed", "1"]
SEGMENTER = ["--task", "seg", "--model", "unet_small", "--model-arg", "width=4", "--model-arg", "levels=2",
             "--size", "32", "--frames", "2", "--epochs", "1", "--batch-size", "8", "--threads", "1", "--seed", "1"]


@pytest.fixture
def reviewed(tiny_collection, tmp_path) -> ReviewFolder:
    """Every clip of the tiny collection reviewed by "tom" (its bline3 truth) with its first
    REVIEWED_FRAMES frames' masks corrected (the truth) and the rest unreviewed."""
    manifest = Manifest.load(tiny_collection)
    reviews = ReviewFolder(tmp_path / "REVIEWS")
    for i, row in enumerate(manifest.rows):
        clip = manifest.clip_path(i)
        reviews.record(Verdict(str(clip), "tom", "bline3", row["truth_bline3"], model_label="none",
                               model_probability=0.6, patient=row["patient"], zone=row["zone"]))
        masks = read_label_masks(manifest.resolve(i, "mask"))
        masks[REVIEWED_FRAMES:] = IGNORE_INDEX
        reviews.save_masks(clip, "tom", masks)
    return reviews


def load_model_file(path):
    from lungus.models.model_file import load_model_file

    return load_model_file(path)


def test_a_classifier_trains_on_a_reviewers_labels(reviewed, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--manifest", str(reviewed.manifest_path), "--out", str(run), "--label-source",
                 "expert:tom", *CLASSIFIER]) == 0
    card = load_model_file(run / "model.pt").card
    assert card.label_source == "expert:tom" and card.training_data["patients"] >= 6


def test_fine_tuning_the_reviewed_model_starts_from_its_weights(reviewed, tiny_models, tmp_path):
    run = tmp_path / "run"
    # A learning rate too small to move the weights: what comes out is what --init put in.
    assert main(["train", "--manifest", str(reviewed.manifest_path), "--out", str(run), "--label-source",
                 "expert:tom", "--init", str(tiny_models["bline3"]), "--lr", "1e-9", *CLASSIFIER]) == 0
    reviewed_model = dict(load_model_file(tiny_models["bline3"]).model.named_parameters())
    tuned = dict(load_model_file(run / "model.pt").model.named_parameters())
    assert tuned.keys() == reviewed_model.keys()
    largest = max(float((tuned[name] - reviewed_model[name]).detach().abs().max()) for name in tuned)
    assert largest < 1e-4, f"fine-tuned weights moved {largest} from the reviewed model's"


def test_a_segmenter_trains_on_corrected_masks_and_skips_unreviewed_frames(reviewed, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--manifest", str(reviewed.manifest_path), "--out", str(run), "--label-source",
                 "labelmaps", "--val-fraction", "0", *SEGMENTER]) == 0
    card = load_model_file(run / "model.pt").card
    n_clips = len(reviewed.rows())
    assert card.training_data["clips"] == n_clips
    assert card.training_data["frames"] == n_clips * REVIEWED_FRAMES  # the 255 frames train nothing
    assert card.extra.get("label_classes") is None  # corrected masks can show every class


def test_the_review_masks_read_back_with_their_unreviewed_frames(reviewed):
    row = reviewed.rows()[0]
    masks = read_label_masks(reviewed.folder / row["mask"])
    assert (masks[REVIEWED_FRAMES:] == IGNORE_INDEX).all() and (masks[:REVIEWED_FRAMES] < 6).all()
    assert np.isin(masks[:REVIEWED_FRAMES], [0, 1, 2, 3, 4, 5]).all()
