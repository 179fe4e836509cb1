"""Corrected masks in a review folder (ReviewFolder.save_masks), read back as training labels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lungus.data.labels.annotation_labels import IGNORE_INDEX
from lungus.data.labels.label_images import read_label_masks
from lungus.errors import LungUSError


def corrected_masks(shape=(5, 48, 40)) -> np.ndarray:
    """Frames 1 and 3 reviewed (a pleural line and a B-line below it), the others not."""
    masks = np.full(shape, IGNORE_INDEX, dtype=np.uint8)
    for t in (1, 3):
        masks[t] = 0
        masks[t, 10:12, 5:35] = 1
        masks[t, 12:, 18:22] = 3
    return masks


def test_masks_round_trip_with_unreviewed_frames_as_255(reviews, review_clips):
    masks = corrected_masks()
    path = reviews.save_masks(review_clips[0], "tom", masks)
    assert path == reviews.folder / "masks" / "patient0_clip.seq.nrrd"
    assert np.array_equal(read_label_masks(path, n_frames=5, shape=(48, 40)), masks)
    [row] = reviews.rows()
    assert row["mask"] == "masks/patient0_clip.seq.nrrd" and "expert_tom" not in row  # no verdict yet
    saved = json.loads(reviews.history_path.read_text().splitlines()[-1])
    assert (saved["kind"], saved["reviewer"], saved["reviewed_frames"]) == ("masks", "tom", [1, 3])


def test_saving_again_replaces_the_file_and_both_saves_stay_in_the_history(reviews, review_clips):
    first = reviews.save_masks(review_clips[0], "tom", corrected_masks())
    again = corrected_masks()
    again[4] = 0
    second = reviews.save_masks(review_clips[0], "ana", again)
    assert first == second and np.array_equal(read_label_masks(second), again)
    saves = [json.loads(line) for line in reviews.history_path.read_text().splitlines()]
    assert [(s["reviewer"], s["reviewed_frames"]) for s in saves] == [("tom", [1, 3]), ("ana", [1, 3, 4])]


def test_clips_with_the_same_stem_get_their_own_mask_files(reviews, review_clips, tmp_path):
    other = tmp_path / "elsewhere" / review_clips[0].name
    other.parent.mkdir()
    other.write_bytes(review_clips[0].read_bytes())
    paths = [reviews.save_masks(clip, "tom", corrected_masks()) for clip in (review_clips[0], other)]
    assert [p.name for p in paths] == ["patient0_clip.seq.nrrd", "patient0_clip_2.seq.nrrd"]


def test_masks_that_do_not_fit_the_clip_are_refused(reviews, review_clips):
    with pytest.raises(LungUSError, match="masks are 4x48x40 .* but the clip is 5x48x40"):
        reviews.save_masks(review_clips[0], "tom", corrected_masks((4, 48, 40)))
    assert not reviews.history_path.exists()


def test_a_frame_mixing_255_with_class_ids_is_refused(reviews, review_clips):
    masks = corrected_masks()
    masks[1, 0, 0] = IGNORE_INDEX
    with pytest.raises(LungUSError, match="frame 1 mixes label value 255 with class ids"):
        reviews.save_masks(review_clips[0], "tom", masks)
