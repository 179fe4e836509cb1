"""ClipClassifier: a whole clip's class distribution from its windows."""

import numpy as np
import torch
from torch import nn

from lungus.predict.classifier import ClipClassifier

NORM = {"mean": 0.5, "std": 0.25}


class LeftBrightness(nn.Module):
    """Logit of 'present' = brightness of the left half minus the right half."""

    def forward(self, x):
        half = x.shape[-1] // 2
        score = x[..., :half].mean(dim=(1, 2, 3, 4)) - x[..., half:].mean(dim=(1, 2, 3, 4))
        return torch.stack([-score, score], dim=1)


def test_flip_test_time_augmentation_makes_mirror_images_agree():
    frames = np.zeros((4, 8, 8), np.uint8)
    frames[:, :, :4] = 200
    plain = ClipClassifier(["absent", "present"], ordinal=False, window=4, stride=2, aggregation="mean",
                           normalisation=NORM)
    flipped = ClipClassifier(["absent", "present"], ordinal=False, window=4, stride=2, aggregation="mean",
                             normalisation=NORM, flip=True)
    model, device = LeftBrightness(), torch.device("cpu")
    assert plain.predict_clip(model, frames, device)[1] > 0.9
    mirrored = frames[:, :, ::-1].copy()
    assert np.allclose(flipped.predict_clip(model, frames, device), flipped.predict_clip(model, mirrored, device))
