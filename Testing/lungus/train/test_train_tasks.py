import numpy as np
import torch
from torch import nn

from lungus.train.tasks import ClassificationTask, aggregate_windows, clip_windows, window_starts

NORM = {"mean": 0.5, "std": 0.25}


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


class LeftBrightness(nn.Module):
    """Logit of 'present' = brightness of the left half minus the right half."""

    def forward(self, x):
        half = x.shape[-1] // 2
        score = x[..., :half].mean(dim=(1, 2, 3, 4)) - x[..., half:].mean(dim=(1, 2, 3, 4))
        return torch.stack([-score, score], dim=1)


def test_flip_test_time_augmentation_makes_mirror_images_agree():
    frames = np.zeros((4, 8, 8), np.uint8)
    frames[:, :, :4] = 200
    plain = ClassificationTask(["absent", "present"], ordinal=False, window=4, stride=2, aggregation="mean",
                               normalisation=NORM)
    flipped = ClassificationTask(["absent", "present"], ordinal=False, window=4, stride=2, aggregation="mean",
                                 normalisation=NORM, flip=True)
    model, device = LeftBrightness(), torch.device("cpu")
    assert plain.predict_clip(model, frames, device)[1] > 0.9
    mirrored = frames[:, :, ::-1].copy()
    assert np.allclose(flipped.predict_clip(model, frames, device), flipped.predict_clip(model, mirrored, device))
