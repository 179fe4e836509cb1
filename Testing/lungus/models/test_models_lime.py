"""LIME (lungus.models.lime) finds what a model looks at: models built here whose output depends on
one known region only, a score exactly linear in the superpixels, and the seeded samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lungus.errors import LungUSError
from lungus.models.lime import (
    LimeSettings,
    cosine_distance_to_original,
    explain_frame,
    lime_maps,
    neutral_fill,
    superpixels,
)

torch.set_num_threads(1)

SIZE = 64
ROWS, COLUMNS = slice(20, 52), slice(40, 48)  # a bright B-line-like streak


def streak_window(frames: int = 1, seed: int = 0) -> torch.Tensor:
    """A normalised input (1, 1, T, 64, 64): speckle with a bright vertical streak at ROWS, COLUMNS
    and a bright horizontal band elsewhere (a decoy the models below ignore)."""
    generator = torch.Generator().manual_seed(seed)
    x = 0.3 * torch.randn(1, 1, frames, SIZE, SIZE, generator=generator)
    x[..., ROWS, COLUMNS] += 2.0
    x[..., 8:12, :] += 2.0
    return x


class RegionModel(nn.Module):
    """A classifier (B, 1, T, H, W) -> logits (B, 2) whose B-line logit is the mean brightness of
    one region of one frame of the window: it sees nothing else."""

    def __init__(self, rows: slice, columns: slice, frame: int = 0) -> None:
        super().__init__()
        self.rows, self.columns, self.frame = rows, columns, frame

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        evidence = 3.0 * x[:, 0, self.frame, self.rows, self.columns].mean(dim=(1, 2)) - 3.0
        return torch.stack([torch.zeros_like(evidence), evidence], dim=1)


def mostly_inside(segments: np.ndarray, region: np.ndarray) -> np.ndarray:
    """(S,) bool: which superpixels lie mostly inside ``region``."""
    return np.array([region[segments == s].mean() > 0.5 for s in range(int(segments.max()) + 1)])


def streak_region() -> np.ndarray:
    region = np.zeros((SIZE, SIZE), bool)
    region[ROWS, COLUMNS] = True
    return region


def test_the_top_superpixels_are_where_the_model_looks():
    model = RegionModel(ROWS, COLUMNS)
    x = streak_window()
    result = explain_frame(lambda batch: model(batch).softmax(dim=1)[:, 1], x, settings=LimeSettings(seed=3))
    region = streak_region()
    for superpixel in result.top_superpixels(2):
        assert region[result.segments == superpixel].mean() > 0.7
    inside = mostly_inside(result.segments, region)
    # Sampling noise gives the others weights of about +-0.01; the streak's are about 0.25.
    assert result.weights[inside].min() > 5 * np.abs(result.weights[~inside]).max()
    assert result.fit > 0.8  # a probability that moves with a few superpixels is nearly linear in them


def test_maps_of_a_window_model_come_from_the_same_mask_on_every_frame():
    # The model reads the last frame; the superpixels come from the window's middle frame.
    model = RegionModel(ROWS, COLUMNS, frame=3).train()
    x = streak_window(frames=4)
    maps = lime_maps(model, x, target_class=1, settings=LimeSettings(samples=200, seed=1))
    assert model.training  # left as it was
    assert maps.shape == (1, 4, SIZE, SIZE) and maps.min() >= 0 and maps.max() == 1
    assert torch.equal(maps[0, 0], maps[0, 3])
    heat = maps[0, 0].numpy()
    region = streak_region()
    assert heat[region].mean() > 5 * heat[~region].mean()


def test_the_surrogate_recovers_a_score_linear_in_the_superpixels():
    """A score that is a weighted sum of pixels is exactly linear in which superpixels show: the
    Ridge surrogate must find each superpixel's true contribution."""
    x = streak_window(seed=2)
    weight_image = torch.randn(SIZE, SIZE, generator=torch.Generator().manual_seed(5))
    settings = LimeSettings(samples=400, superpixels=30, seed=4)
    result = explain_frame(lambda batch: (batch[:, 0, 0] * weight_image).sum(dim=(1, 2)), x, settings=settings)
    contribution = (weight_image * (x[0, 0, 0] - neutral_fill(x, settings.fill)[0, 0, 0])).numpy()
    truth = np.array([contribution[result.segments == s].sum() for s in range(len(result.weights))])
    assert np.corrcoef(result.weights, truth)[0, 1] > 0.99
    assert result.fit > 0.99


def test_the_same_seed_gives_the_same_weights_and_another_seed_other_samples():
    model = RegionModel(ROWS, COLUMNS)
    x = streak_window()

    def weights(seed: int) -> np.ndarray:
        return lime_maps(model, x, 1, LimeSettings(samples=64, seed=seed)).numpy()

    assert np.array_equal(weights(7), weights(7))
    assert not np.array_equal(weights(7), weights(8))


def test_what_lies_outside_the_fan_is_never_hidden():
    x = streak_window()
    fan = np.zeros((SIZE, SIZE), bool)
    fan[:, 16:] = True
    model = RegionModel(slice(0, SIZE), slice(0, 16))  # looks only outside the fan
    result = explain_frame(lambda batch: model(batch).softmax(dim=1)[:, 1], x, inside=fan,
                           settings=LimeSettings(samples=64))
    assert (result.segments[:, :16] == -1).all() and (result.segments[:, 16:] >= 0).all()
    assert np.abs(result.weights).max() < 1e-9
    assert not result.heat_map().any()


@pytest.mark.parametrize("method", ["slic", "felzenszwalb"])
def test_superpixels_come_near_the_asked_count_with_dense_ids(method):
    frame = streak_window(seed=1)[0, 0, 0].numpy()
    segments = superpixels(frame, 40, method)
    assert segments.min() == 0
    assert np.array_equal(np.unique(segments), np.arange(segments.max() + 1))
    assert 25 <= segments.max() + 1 <= 60


def test_lime_distance_is_the_cosine_distance_to_the_unaltered_frame():
    from sklearn.metrics.pairwise import cosine_distances

    samples = np.random.default_rng(0).integers(0, 2, size=(20, 12)).astype(bool)
    samples[0] = True
    samples[1] = False
    expected = cosine_distances(samples.astype(float), np.ones((1, 12)))[:, 0]
    assert np.allclose(cosine_distance_to_original(samples), expected)


@pytest.mark.parametrize(
    "setting, message",
    [
        ({"samples": 5}, "samples must be a whole number from 10"),
        ({"samples": 12.5}, "samples"),
        ({"superpixels": 1}, "superpixels"),
        ({"segmentation": "quickshift"}, "slic, felzenszwalb"),
        ({"fill": "zero"}, "mean, blur"),
        ({"kernel_width": 0}, "kernel width"),
        ({"seed": -1}, "seed"),
        ({"batch": True}, "batch"),
    ],
)
def test_bad_settings_are_refused_in_one_line(setting, message):
    with pytest.raises(LungUSError, match=message):
        LimeSettings(**setting)
