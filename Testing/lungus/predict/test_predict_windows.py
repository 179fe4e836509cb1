"""A clip classifier's sliding windows and their aggregation to one clip distribution."""

import numpy as np
import torch

from lungus.predict.windows import aggregate_windows, clip_windows, window_starts


def test_windows_cover_every_frame_and_short_clips_repeat_frames():
    assert window_starts(20, 8, 4) == [0, 4, 8, 12]
    assert window_starts(21, 8, 4) == [0, 4, 8, 12, 13]
    frames = np.arange(3, dtype=np.uint8)[:, None, None] * np.ones((1, 2, 2), np.uint8)
    windows = clip_windows(frames, 6, 3)
    assert windows.shape == (1, 6, 2, 2)
    assert list(windows[0, :, 0, 0]) == [0, 0, 1, 1, 2, 2]  # stretched, never blank


def test_max_aggregation_takes_the_window_with_most_b_line_evidence():
    windows = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert torch.equal(aggregate_windows(windows, "max"), torch.tensor([0.2, 0.8]))
    assert torch.allclose(aggregate_windows(windows, "mean"), torch.tensor([1.7 / 3, 1.3 / 3]))
