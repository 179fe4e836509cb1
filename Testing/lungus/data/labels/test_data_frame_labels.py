"""lungus.data.labels.frame_labels: labels per frame from masks or a frames manifest."""

from __future__ import annotations

import numpy as np
import pytest

from lungus.data.labels.frame_labels import UNLABELLED, FrameLabels, mask_frame_labels
from lungus.errors import LungUSError


def test_a_frame_has_b_lines_when_its_mask_has_any_b_line_pixel():
    masks = np.zeros((4, 8, 8), np.uint8)
    masks[0, 2, 2] = 1  # pleural line only
    masks[1, 3, 3] = 3  # one B-line pixel
    masks[2, 4:, 4:] = 4  # confluent
    masks[3] = 255  # nobody annotated this frame
    assert mask_frame_labels(masks).tolist() == [0, 1, 1, UNLABELLED]


def test_a_frames_manifest_gives_each_prepared_frame_its_label(tmp_path):
    path = tmp_path / "frames.csv"
    path.write_text("clip,frame,label\nclips/a.mp4,0,present\n./clips/a.mp4,2,no\nclips/b.mp4,1,1\n")
    labels = FrameLabels.load(path, "bline2")
    assert labels.clip_labels("clips/a.mp4", np.array([0, 1, 2])).tolist() == [1, UNLABELLED, 0]
    assert labels.clip_labels("clips/b.mp4", np.array([0, 2])).tolist() == [UNLABELLED, UNLABELLED]


@pytest.mark.parametrize("rows, message", [("clips/a.mp4,x,present", "line 2: column frame"),
                                           ("clips/a.mp4,0,maybe", "line 2: column label"),
                                           ("clips/a.mp4,0,present\nclips/a.mp4,0,absent", "line 3: frame 0 .* twice")])
def test_bad_rows_of_a_frames_manifest_are_named_by_line(tmp_path, rows, message):
    path = tmp_path / "frames.csv"
    path.write_text("clip,frame,label\n" + rows + "\n")
    with pytest.raises(LungUSError, match=message):
        FrameLabels.load(path, "bline2")
