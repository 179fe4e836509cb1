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


def test_topk_aggregation_averages_the_k_windows_with_most_evidence():
    windows = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6]])
    assert torch.allclose(aggregate_windows(windows, "topk:2"), torch.tensor([0.3, 0.7]))
    assert torch.allclose(aggregate_windows(windows, "topk:9"), aggregate_windows(windows, "mean"))


def test_consecutive_aggregation_needs_k_frames_in_a_row():
    # One strong frame alone does not make a clip when 2 in a row are asked for: the run of two
    # frames (0.6, 0.7) is the clip's evidence, read at its weaker frame.
    p_blines = torch.tensor([0.1, 0.95, 0.1, 0.6, 0.7, 0.2])
    windows = torch.stack([1 - p_blines, p_blines], dim=1)
    assert torch.allclose(aggregate_windows(windows, "consecutive:2"), torch.tensor([0.4, 0.6]))
    assert torch.allclose(aggregate_windows(windows, "consecutive:1"), aggregate_windows(windows, "max"))
    assert torch.allclose(aggregate_windows(windows, "consecutive:50"), torch.tensor([0.9, 0.1]))


def test_unknown_clip_rules_are_refused_by_the_config_and_the_card():
    import pytest

    from lungus.errors import LungUSError
    from lungus.models.model_file import ModelCard
    from lungus.train.config import TrainConfig

    with pytest.raises(LungUSError, match="eval_aggregation must be a clip rule"):
        TrainConfig(manifest="m.csv", out="run", eval_aggregation="topk:0")
    assert TrainConfig(manifest="m.csv", out="run", eval_aggregation="consecutive:3").eval_aggregation == "consecutive:3"
    card = {"task": "bline2", "class_names": ["absent", "present"], "architecture": {"name": "frame_cnn"},
            "preprocessing": {"size": [64, 64], "frames": 1, "normalisation": {"mean": 0.5, "std": 0.25},
                              "fan_crop": True, "eval_aggregation": "median"},
            "label_source": "truth"}
    with pytest.raises(ValueError, match="eval_aggregation.*median"):
        ModelCard.from_dict(card)
