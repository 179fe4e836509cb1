"""`lungus explain`: a PNG per chosen frame with the classifier's Grad-CAM or LIME map, exactly the
engine's picture; one line and exit status 2 for bad frames, models and clips."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from lungus.cli import main
from lungus.infer import Analyzer
from lungus.infer.analyzer import explained_class
from lungus.infer.overlays import explained_frame, explanation_label, text_band_height
from lungus.models.lime import LimeSettings

torch.set_num_threads(1)

LIME_OPTIONS = ("--samples", "32", "--superpixels", "10")


def explain(clip, model, out, *extra):
    return main(["explain", str(clip), "--model", str(model), "--out", str(out), "--device", "cpu",
                 "--threads", "1", *extra])


def read_png(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("method", ["gradcam", "lime"])
def test_each_frame_asked_for_gets_the_engines_picture(method, tiny_models, tiny_clip_paths, tmp_path, capsys):
    clip, model = tiny_clip_paths[0], tiny_models["classifier"]
    lime = LIME_OPTIONS if method == "lime" else ()
    assert explain(clip, model, tmp_path / "out", "--method", method, "--frames", "5,2", *lime) == 0
    written = sorted(path.name for path in (tmp_path / "out").glob("*.png"))
    assert written == [f"{clip.stem}.frame0002.{method}.png", f"{clip.stem}.frame0005.{method}.png"]
    analyzer = Analyzer(model, device="cpu")
    loaded = analyzer.load(clip)
    analysis = analyzer.analyse(loaded)
    settings = LimeSettings(samples=32, superpixels=10) if method == "lime" else None
    explanation = analyzer.explain_frames(loaded, [2, 5], method, explained_class(analysis.probabilities, analysis.predicted_class), settings)
    for position, name in enumerate(written):
        expected = explained_frame(loaded.clip, analysis, explanation, position)
        assert np.array_equal(read_png(tmp_path / "out" / name), expected)
    assert f"{method}: 2 frame(s) of {clip}" in capsys.readouterr().out


def test_the_header_band_names_frame_method_class_and_evidence(tiny_models, tiny_clip_paths, tmp_path):
    clip = tiny_clip_paths[0]
    analyzer = Analyzer(tiny_models["classifier"], device="cpu")
    loaded = analyzer.load(clip)
    analysis = analyzer.analyse(loaded)
    explanation = analyzer.explain_frames(loaded, [3], "gradcam", 1)
    picture = explained_frame(loaded.clip, analysis, explanation, 0)
    band = text_band_height(picture.shape[1])
    # Text in the band, the frame below it (64 px frames are shown 5 times as large, 320 px).
    assert picture.shape[:2] == (band + 320, 320) and (picture[:band] > 200).any()
    label = explanation_label(analysis, explanation, 3)
    assert label.startswith("gradcam: present  p(B) ") and float(label.split()[-1]) == pytest.approx(
        analysis.p_blines[3], abs=0.005
    )


def test_top_explains_the_frames_with_the_most_b_line_evidence(tiny_models, tiny_clip_paths, tmp_path):
    clip, model = tiny_clip_paths[1], tiny_models["classifier"]
    assert explain(clip, model, tmp_path, "--frames", "top:2") == 0
    top = sorted(frame for frame, _ in Analyzer(model, device="cpu").analyse(clip).top_frames(2))
    assert sorted(path.name for path in tmp_path.glob("*.png")) == [
        f"{clip.stem}.frame{frame:04d}.gradcam.png" for frame in top
    ]


def test_lime_pictures_are_the_same_on_every_run(tiny_models, tiny_clip_paths, tmp_path):
    clip, model = tiny_clip_paths[2], tiny_models["classifier"]
    for out in ("a", "b"):
        assert explain(clip, model, tmp_path / out, "--method", "lime", "--frames", "4", *LIME_OPTIONS) == 0
    name = f"{clip.stem}.frame0004.lime.png"
    assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_a_frame_level_model_is_explained_frame_by_frame(tiny_clip_paths, tmp_path):
    """A model with one-frame windows (as the fusion models are): LIME sees the frame alone."""
    from lungus.infer.recipes import random_model_file

    model = random_model_file(tmp_path / "frames.pt", "bline2", "frame_cnn", seed=1, size=32, frames=1,
                              eval_stride=1, model_args={"width": 4})
    assert explain(tiny_clip_paths[0], model, tmp_path / "out", "--method", "lime", "--frames", "0,7",
                   *LIME_OPTIONS) == 0
    assert len(list((tmp_path / "out").glob("*.lime.png"))) == 2


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--frames", "3,99"], "frame 99 is beyond the clip's 8 frames (0-7)"),
        (["--frames", "3,x"], "--frames must be frame numbers from 0"),
        (["--frames", "-1"], "--frames must be frame numbers from 0"),
        (["--frames", "top:0"], "--frames top:K needs a whole number K >= 1"),
        (["--samples", "50"], "--samples is a LIME setting; use it with --method lime"),
        (["--method", "lime", "--samples", "5"], "LIME samples must be a whole number from 10"),
        (["--method", "attention"], "gives no spatial attention for --explain attention"),
    ],
)
def test_bad_frames_and_settings_stop_with_one_line(arguments, message, tiny_models, tiny_clip_paths, tmp_path,
                                                   capsys):
    assert explain(tiny_clip_paths[0], tiny_models["classifier"], tmp_path / "out", *arguments) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1 and error.startswith("lungus explain: error: ")
    assert not list(tmp_path.glob("out/*.png"))


def test_a_bad_model_or_clip_stops_with_one_line(tiny_models, tiny_clip_paths, tmp_path, capsys):
    clip, classifier = tiny_clip_paths[0], tiny_models["classifier"]
    not_a_clip = tmp_path / "notes.txt"
    not_a_clip.write_text("no pixels here\n")
    cases = [
        (clip, tiny_models["segmenter"], "this is a segmenter"),
        (clip, not_a_clip, "not a lungus model"),
        (clip, tmp_path / "missing.pt", "missing.pt"),
        (tmp_path / "missing.mp4", classifier, "no such clip file or folder"),
        (not_a_clip, classifier, "not a clip"),
    ]
    for clip_path, model, message in cases:
        assert explain(clip_path, model, tmp_path / "out") == 2
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1, error
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.png"))
