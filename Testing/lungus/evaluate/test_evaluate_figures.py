import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from lungus.evaluate.figures import confusion_figure, draw_roc, reliability_figure, roc_figure


def _predictions():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 100)
    s = np.clip(0.7 * y + rng.normal(0.15, 0.2, 100), 0.01, 0.99)
    return y, np.stack([1 - s, s], 1)


def test_figures_are_real_pngs(tmp_path):
    y, p = _predictions()
    paths = [
        roc_figure(tmp_path / "roc.png", y, p, ["absent", "present"], curves={"other": p[::-1]}),
        confusion_figure(tmp_path / "cm.png", y, p.argmax(1), ["absent", "present"]),
        reliability_figure(tmp_path / "rel.png", y, p),
    ]
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert min(image.size) > 200
            assert np.asarray(image.convert("L")).std() > 10  # something is drawn


def test_roc_curves_are_named_by_their_models_and_the_axes_by_their_rates():
    y, p = _predictions()
    figure, axes = plt.subplots()
    draw_roc(axes, y, p, ["absent", "present"], curves={"expert-trained": p[::-1]}, name="crowd-trained")
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    plt.close(figure)
    assert [entry.split(" (AUC")[0] for entry in legend] == ["crowd-trained", "expert-trained"]
    assert axes.get_xlabel() == "False positive rate (1 - specificity)"
    assert axes.get_ylabel() == "True positive rate (sensitivity)"
    assert "Positive label" not in axes.get_xlabel() + axes.get_ylabel()
