"""Explanations through the engine: Grad-CAM maps, mapped back to the original frames, light up the
B-lines of a clip, for a small frame CNN trained here on clips with known B-line columns."""

from __future__ import annotations

import numpy as np
import pytest

from lungus.data.pipeline.clip_preparation import Preprocessing, prepare_clip
from lungus.infer import Analyzer
from lungus.infer.recipes import recipe_card
from lungus.io.clip import Clip, FanGeometry

HEIGHT, WIDTH, FRAMES = (
    60,
    96,
    4,
)  # letterboxed into 48x64: scaled by 2/3, 4 rows of padding on top and bottom
PLEURA = 12


def bline_clip(rng: np.random.Generator, with_bline: bool) -> tuple[Clip, int]:
    """A noisy clip with a pleural line and, if asked, a vertical B-line below it (column returned);
    without one, a horizontal A-line instead."""
    frames = rng.normal(70, 20, size=(FRAMES, HEIGHT, WIDTH))
    frames[:, PLEURA : PLEURA + 3] += 110
    column = -1
    if with_bline:
        column = int(rng.integers(8, WIDTH - 12))
        frames[:, PLEURA + 3 :, column : column + 4] += 110
    else:
        row = int(rng.integers(HEIGHT // 2, HEIGHT - 4))
        frames[:, row : row + 3] += 110
    clip = Clip(
        np.clip(frames, 0, 255).astype(np.uint8),
        fps=20.0,
        fan=FanGeometry(np.ones((HEIGHT, WIDTH), bool), "full"),
    )
    return clip, column


@pytest.fixture(scope="module")
def trained_model_file(tmp_path_factory, train_frame_cnn):
    card = recipe_card(
        "bline2", "frame_cnn", model_args={"width": 8}, size=(48, 64), frames=FRAMES, name="gradcam-test"
    )
    pre = Preprocessing.from_card(card.preprocessing)

    def batch(rng):
        labels = [index % 2 for index in range(8)]
        return np.stack([prepare_clip(bline_clip(rng, bool(label))[0], pre).frames for label in labels]), labels

    return train_frame_cnn(tmp_path_factory.mktemp("gradcam") / "model.pt", card, batch, steps=50)


def test_grad_cam_lights_up_the_b_lines_in_the_original_frames(trained_model_file):
    analyzer = Analyzer(trained_model_file, device="cpu")
    rng = np.random.default_rng(123)
    contrasts = []
    for _ in range(8):
        clip, column = bline_clip(rng, True)
        result = analyzer.analyse(clip, explain="gradcam")
        assert result.pred == "present"
        explanation = result.explanation
        assert explanation.method == "gradcam" and explanation.target_class == "present"
        maps = np.stack([explanation.original_map(i) for i in range(len(explanation.maps))])
        assert maps.shape == clip.frames.shape and maps.min() >= 0 and maps.max() <= 1
        below = maps[:, PLEURA + 3 :, :].mean(axis=(0, 1))  # lateral profile below the pleura
        band = np.zeros(WIDTH, bool)
        band[max(0, column - 4) : column + 8] = True
        contrasts.append(below[band].mean() / max(below[~band].mean(), 1e-6))
    assert min(contrasts) > 1.2 and float(np.median(contrasts)) > 1.5


def test_class_activation_maps_also_explain(trained_model_file):
    clip, _ = bline_clip(np.random.default_rng(5), True)
    result = Analyzer(trained_model_file, device="cpu").analyse(clip, explain="cam")
    assert result.explanation.method == "cam" and result.explanation.maps.shape == (FRAMES, 48, 64)


def test_attention_maps_need_an_attention_model(trained_model_file):
    from lungus.errors import LungUSError

    clip, _ = bline_clip(np.random.default_rng(6), True)
    with pytest.raises(LungUSError, match="gradcam"):
        Analyzer(trained_model_file, device="cpu").analyse(clip, explain="attention")
