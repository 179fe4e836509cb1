"""Real learning on tiny synthetic B-line clips: each model overfits a small batch, the trained
frame CNN generalises to new clips, and its Grad-CAM lights up the B-line."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

from lungus.models import build_model, grad_cam

torch.set_num_threads(1)

PLEURA_ROW = 8


def bline_clips(count: int, size: int = 32, frames: int = 4, seed: int = 0):
    """Noisy clips with a pleural line; odd clips have a vertical B-line below it (its column is
    returned), even clips a horizontal A-line instead. Returns x (N, 1, T, H, W), labels, columns."""
    generator = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    x = 0.3 * torch.randn(count, 1, frames, size, size, generator=generator)
    x[:, :, :, PLEURA_ROW : PLEURA_ROW + 2, :] += 1.5
    labels = torch.arange(count) % 2
    columns = torch.full((count,), -1)
    for i in range(count):
        if labels[i]:
            columns[i] = rng.randrange(4, size - 7)
            x[i, 0, :, PLEURA_ROW + 2 :, columns[i] : columns[i] + 3] += 1.5
        else:
            row = rng.randrange(size // 2, size - 3)
            x[i, 0, :, row : row + 2, :] += 1.5
    return x, labels, columns


def fit(
    model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, steps: int, lr: float = 3e-3
) -> list[float]:
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    for _ in range(steps):
        optimiser.zero_grad()
        loss = F.cross_entropy(model(x), target)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize(
    "name, args",
    [
        ("frame_cnn", {"width": 4}),
        ("cnn_lstm", {"width": 4, "hidden": 16}),
        ("r3d_18", {"width": 4}),
        ("r2plus1d_18", {"width": 4}),
    ],
)
def test_classifier_overfits_a_small_batch(name, args):
    torch.manual_seed(0)
    x, labels, _ = bline_clips(8)
    model = build_model(name, 2, **args)
    losses = fit(model, x, labels, steps=30)
    assert losses[-1] < 0.2 * losses[0]
    with torch.no_grad():
        assert torch.equal(model.eval()(x).argmax(dim=1), labels)


@pytest.fixture(scope="module")
def trained_frame_cnn():
    """A frame CNN trained on fresh clips every step (60 steps of 8), as a real loader would feed it."""
    torch.manual_seed(0)
    model = build_model("frame_cnn", 2, width=8)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for step in range(60):
        x, labels, _ = bline_clips(8, size=64, seed=100 + step)
        optimiser.zero_grad()
        F.cross_entropy(model(x), labels).backward()
        optimiser.step()
    return model.eval()


def test_frame_cnn_generalises_to_new_clips(trained_frame_cnn):
    x, labels, _ = bline_clips(32, size=64, seed=1)
    with torch.no_grad():
        accuracy = (trained_frame_cnn(x).argmax(dim=1) == labels).float().mean().item()
    assert accuracy >= 0.9


def test_grad_cam_lights_up_the_b_line(trained_frame_cnn):
    x, labels, columns = bline_clips(32, size=64, seed=1)
    cams, _ = grad_cam(trained_frame_cnn, x, target_class=1)
    assert cams.shape == (32, 4, 64, 64) and cams.min() >= 0 and cams.max() <= 1
    contrasts = []
    for i in torch.nonzero(labels).flatten():
        # Below the pleura, the map is brighter in a band around the B-line than elsewhere.
        profile = cams[i, :, PLEURA_ROW + 2 :, :].mean(dim=(0, 1))
        band = torch.zeros(64, dtype=torch.bool)
        band[max(0, int(columns[i]) - 6) : int(columns[i]) + 9] = True
        contrasts.append(float(profile[band].mean() / profile[~band].mean()))
    assert min(contrasts) > 1.2 and sorted(contrasts)[len(contrasts) // 2] > 1.5


def test_grad_cam_leaves_the_model_mode_alone(trained_frame_cnn):
    trained_frame_cnn.train()
    try:
        grad_cam(trained_frame_cnn, bline_clips(2, size=64)[0])
        assert trained_frame_cnn.training
    finally:
        trained_frame_cnn.eval()


def test_grad_cam_works_for_video_resnets():
    model = build_model("r2plus1d_18", 2, width=4).eval()
    cams, logits = grad_cam(model, bline_clips(2)[0])
    assert cams.shape == (2, 4, 32, 32) and logits.shape == (2, 2)


def seg_batch(count: int, size: int = 32, seed: int = 0):
    """Frames and masks: class 1 pleural line, class 3 B-line columns below it, 0 elsewhere."""
    x, labels, columns = bline_clips(count, size=size, frames=1, seed=seed)
    masks = torch.zeros(count, size, size, dtype=torch.long)
    masks[:, PLEURA_ROW : PLEURA_ROW + 2, :] = 1
    for i in torch.nonzero(labels).flatten():
        masks[i, PLEURA_ROW + 2 :, columns[i] : columns[i] + 3] = 3
    return x[:, :, 0], masks


def test_unet_small_learns_pleura_and_b_lines():
    torch.manual_seed(0)
    x, masks = seg_batch(8)
    model = build_model("unet_small", 6, width=8, levels=3)
    losses = fit(model, x, masks, steps=100)
    assert losses[-1] < 0.2 * losses[0]
    with torch.no_grad():
        predicted = model.eval()(x).argmax(dim=1)
    for cls in (1, 3):
        overlap = ((predicted == cls) & (masks == cls)).sum().item()
        union = ((predicted == cls) | (masks == cls)).sum().item()
        assert overlap / union > 0.5, f"IoU of class {cls}"
