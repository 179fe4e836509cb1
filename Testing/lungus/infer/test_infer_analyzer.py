"""The inference engine's Python API: lungus.infer.Analyzer."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from lungus.data.labels.blines import analyse_masks
from lungus.data.pipeline.clip_preparation import Preprocessing, prepare_clip
from lungus.errors import LungUSError
from lungus.infer import Analyzer, Cancelled
from lungus.io import read_clip
from lungus.predict.card import predictor_from_card


@pytest.fixture(scope="module")
def analyzer(tiny_models):
    return Analyzer(tiny_models["classifier"], tiny_models["segmenter"], device="cpu", runtime="torch")


def test_clip_probabilities_are_the_evaluation_windows_aggregated(analyzer, tiny_clip_paths):
    """The engine scores a clip exactly as `lungus evaluate` does (ClipClassifier.predict_clip)."""
    clip = read_clip(tiny_clip_paths[0])
    result = analyzer.analyse(clip)
    runner = analyzer.classifier
    prepared = prepare_clip(clip, Preprocessing.from_card(runner.card.preprocessing))
    task = predictor_from_card(runner.card)
    expected = task.predict_clip(runner.model, prepared.frames, torch.device("cpu"))
    np.testing.assert_allclose(result.probabilities, expected, atol=1e-6)
    assert result.pred == runner.class_names[int(np.argmax(expected))]


def test_every_frame_gets_evidence_counts_and_blas(analyzer, tiny_clip_paths):
    result = analyzer.analyse(tiny_clip_paths[1])
    assert list(result.frames) == list(range(result.n_frames))
    assert result.p_blines.shape == (result.n_frames,) and np.all(
        (result.p_blines >= 0) & (result.p_blines <= 1)
    )
    assert result.bline_count.shape == (result.n_frames,) and result.bline_count.min() >= 0
    assert len(result.blas) == len(result.positions) == result.n_frames
    assert result.extra["frame_evidence"] == "frame_logits"


def test_frame_evidence_is_the_models_own_frame_probability(analyzer, tiny_clip_paths):
    """A frame CNN's frames are independent: each frame's evidence is 1 - P(absent) of its frame logits."""
    clip = read_clip(tiny_clip_paths[2])
    result = analyzer.analyse(clip)
    runner = analyzer.classifier
    prepared = prepare_clip(clip, Preprocessing.from_card(runner.card.preprocessing))
    x = runner.task.inputs(torch.from_numpy(prepared.frames[None]), torch.device("cpu"))
    with torch.no_grad():
        frame_logits = runner.model.explain(x)["frame_logits"][0]
    np.testing.assert_allclose(result.p_blines, 1 - frame_logits.softmax(dim=-1)[:, 0].numpy(), atol=1e-5)


def test_counts_and_blas_come_from_the_segmenters_masks(analyzer, tiny_clip_paths):
    clip = read_clip(tiny_clip_paths[3])
    result = analyzer.analyse(clip)
    seg = result.segmentation
    prepared = prepare_clip(clip, Preprocessing.from_card(analyzer.segmenter.card.preprocessing))
    # Evaluation's path: the task the card describes (label classes, B-line specks dropped).
    task = predictor_from_card(analyzer.segmenter.card)
    masks = task.predict_masks(
        analyzer.segmenter.model, prepared.frames, torch.device("cpu"), prepared.fan.mask
    )
    np.testing.assert_array_equal(seg.masks, masks)
    expected = analyse_masks(masks, prepared.fan)
    np.testing.assert_array_equal(result.bline_count, expected.bline_count)
    assert result.clip_record()["bline_count_max"] == expected.bline_count_max
    assert seg.original_masks(clip.n_frames).shape == clip.frames.shape


def test_frames_array_and_clip_give_the_same_result_as_the_file(analyzer, tiny_clip_paths):
    clip = read_clip(tiny_clip_paths[4])
    from_file = analyzer.analyse(tiny_clip_paths[4])
    from_clip = analyzer.analyse(clip)
    np.testing.assert_allclose(from_clip.probabilities, from_file.probabilities)
    from_frames = analyzer.analyse(clip.frames, fps=clip.fps)  # fan found from the pixels
    assert from_frames.n_frames == clip.n_frames and from_frames.fps == clip.fps
    assert from_frames.probabilities.shape == (2,)


def test_frame_rate_reduction_maps_results_to_the_original_frames(tmp_path, tiny_clip_paths):
    """A 25 fps card on a 50 fps clip looks at every other frame; rows name those original frames."""
    from lungus.infer.recipes import random_model_file

    model = random_model_file(
        tmp_path / "c.pt", "bline2", "frame_cnn", size=32, frames=4, target_fps=25.0, model_args={"width": 4}
    )
    clip = read_clip(tiny_clip_paths[0])
    clip.fps = 50.0
    result = Analyzer(model, device="cpu").analyse(clip)
    assert list(result.frames) == list(range(0, clip.n_frames, 2))
    assert [row["time_s"] for row in result.frame_records()] == [f / 50.0 for f in range(0, clip.n_frames, 2)]


def test_progress_reports_every_step_up_to_the_total(analyzer, tiny_clip_paths):
    calls = []
    analyzer.analyse(tiny_clip_paths[0], progress=lambda done, total, what: calls.append((done, total, what)))
    done = [c[0] for c in calls]
    assert done == sorted(done) and done[-1] == calls[-1][1] and len(calls) >= 3
    assert {c[2] for c in calls} >= {"read", "classify", "segment", "done"}


def test_a_set_event_cancels_before_any_work(analyzer, tiny_clip_paths):
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        analyzer.analyse(tiny_clip_paths[0], cancel=stop)


def test_cancel_during_the_analysis_stops_it(analyzer, tiny_clip_paths):
    stop = threading.Event()
    with pytest.raises(Cancelled):
        analyzer.analyse(tiny_clip_paths[0], cancel=stop, progress=lambda done, total, what: stop.set())


def test_a_segmenter_given_as_classifier_is_refused_with_advice(tiny_models):
    with pytest.raises(LungUSError, match="pass it with --segmenter"):
        Analyzer(tiny_models["segmenter"], device="cpu")


def test_no_model_at_all_is_refused():
    with pytest.raises(LungUSError, match="classifier"):
        Analyzer(None, None)


def test_onnx_runtime_segmenter_gives_the_torch_masks(tiny_models, analyzer, tiny_clip_paths):
    fast = Analyzer(None, tiny_models["segmenter"], device="cpu", runtime="onnx")
    assert fast.segmenter.runtime == "onnx"
    clip = read_clip(tiny_clip_paths[5])
    masks_onnx = fast.analyse(clip).segmentation.masks
    masks_torch = analyzer.analyse(clip).segmentation.masks
    assert (masks_onnx == masks_torch).mean() > 0.999


def test_three_class_models_name_their_classes(tiny_models, tiny_clip_paths):
    result = Analyzer(tiny_models["bline3"], device="cpu").analyse(tiny_clip_paths[0])
    record = result.clip_record()
    assert record["task"] == "bline3" and record["pred"] in ("none", "discrete", "confluent")
    assert sum(record[f"p_{name}"] for name in ("none", "discrete", "confluent")) == pytest.approx(
        1, abs=1e-3
    )


def test_a_corrupt_file_raises_a_one_line_error(analyzer, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
    with pytest.raises(LungUSError) as caught:
        analyzer.analyse(bad)
    assert "broken.mp4" in str(caught.value) and "\n" not in str(caught.value)
