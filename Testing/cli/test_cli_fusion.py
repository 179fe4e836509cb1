"""End to end: `lungus features`, `lungus train --model fusion` with patient folds and
--filter-frames, and the fusion model file through `lungus evaluate` and `lungus infer`."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from lungus.cli import main
from lungus.data.manifests.manifest import Manifest
from lungus.models.model_file import load_model_file

torch.set_num_threads(1)


def test_cv_gives_every_clip_an_out_of_fold_prediction_by_patient_folds(tiny_fusion_run, tiny_collection):
    with open(tiny_fusion_run / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    manifest = Manifest.load(tiny_collection)
    assert sorted(r["clip"] for r in rows) == sorted(manifest.clips)
    folds_of_patient: dict[str, set[str]] = {}
    for row in rows:
        folds_of_patient.setdefault(row["patient"], set()).add(row["fold"])
    assert all(len(folds) == 1 for folds in folds_of_patient.values())
    assert json.loads((tiny_fusion_run / "cv_metrics.json").read_text())["n_clips"] == 16


def test_the_model_file_is_a_frame_classifier_with_its_backbones_and_classifier(tiny_fusion_run, tiny_models):
    loaded = load_model_file(tiny_fusion_run / "model.pt")  # weights_only=True: no pickle
    card = loaded.card
    assert card.architecture["name"] == "fusion" and card.architecture["args"]["head"]["kind"] == "logreg"
    assert [b["name"] for b in card.architecture["args"]["backbones"]] == ["tiny-cls", "tiny-bline3"]
    assert (card.preprocessing["frames"], card.preprocessing["eval_stride"]) == (1, 1)
    assert card.preprocessing["eval_aggregation"] == "topk:2"
    assert card.training_data["clips"] == 16 and card.training_data["frames"] == 16 * 8
    assert "cv_auc" in card.validation_metrics


def test_its_forward_on_frames_is_its_classifier_on_the_cached_features(tiny_fusion_run, tiny_models, tiny_clip_paths):
    from lungus.data.pipeline.clip_preparation import ClipCache, Preprocessing
    from lungus.features.backbones import resolve_backbones
    from lungus.features.store import FeatureStore
    from lungus.models.normalisation import normalise_frames

    model = load_model_file(tiny_fusion_run / "model.pt").model
    store = FeatureStore(tiny_fusion_run.parent / "features", Preprocessing((32, 32)), ClipCache(None))
    features, _ = store.fused(resolve_backbones([str(tiny_models["classifier"]), str(tiny_models["bline3"])]),
                              tiny_clip_paths[0])
    frames = store.clip_cache.get(tiny_clip_paths[0], store.preprocessing).frames
    x = normalise_frames(frames, model.input_normalisation)[:, None, None]  # (T, 1, 1, H, W): one frame each
    with torch.no_grad():
        from_frames = model(x).softmax(dim=1)
        from_cache = model.classify_features(torch.from_numpy(features)).float()
    torch.testing.assert_close(from_frames, from_cache, atol=1e-5, rtol=0)


def test_evaluate_and_infer_give_their_standard_outputs(tiny_fusion_run, tiny_collection, tiny_clip_paths, tmp_path):
    assert main(["evaluate", "--model", str(tiny_fusion_run / "model.pt"), "--manifest", str(tiny_collection),
                 "--out", str(tmp_path / "eval"), "--device", "cpu"]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["n_clips"] == 16 and "auc_ci" in metrics
    assert {"roc.png", "confusion.png", "predictions.csv"} <= {p.name for p in (tmp_path / "eval").iterdir()}
    assert main(["infer", *map(str, tiny_clip_paths[:2]), "--model", str(tiny_fusion_run / "model.pt"),
                 "--out", str(tmp_path / "infer"), "--device", "cpu"]) == 0
    with open(tmp_path / "infer" / "clips.csv", newline="") as handle:
        clips = list(csv.DictReader(handle))
    assert [c["error"] for c in clips] == ["", ""] and all(c["pred"] in ("absent", "present") for c in clips)
    with open(tmp_path / "infer" / "frames.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 16


def test_filter_frames_by_mask_drops_b_line_clip_frames_without_b_lines(tiny_fusion_run, tiny_models, tiny_collection):
    run = tiny_fusion_run.parent / "filtered"
    code = main(["train", "--manifest", str(tiny_collection), "--task", "bline2", "--model", "fusion",
                 "--backbones", str(tiny_models["classifier"]), "--size", "32", "--filter-frames", "masks",
                 "--features-dir", str(tiny_fusion_run.parent / "features"), "--val-fraction", "0",
                 "--out", str(run), "--device", "cpu"])
    assert code == 0
    card = load_model_file(run / "model.pt").card
    assert card.extra["frames_dropped"] > 0
    assert card.training_data["frames"] + card.extra["frames_dropped"] == 16 * 8


def test_a_tiny_fusion_run_without_backbones_exits_2(tiny_collection, tmp_path, capsys):
    code = main(["train", "--manifest", str(tiny_collection), "--model", "fusion", "--out", str(tmp_path / "run")])
    assert code == 2 and "needs --backbones" in capsys.readouterr().err


def test_a_fusion_model_carries_an_operating_point_from_its_out_of_fold_predictions(tiny_fusion_run):
    card = load_model_file(tiny_fusion_run / "model.pt").card
    with open(tiny_fusion_run / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert card.decision.chosen_on == f"out-of-fold predictions of 2 fold fits: {len(rows)} clips"
    assert "at_0.5" in json.loads((tiny_fusion_run / "cv_metrics.json").read_text())


@pytest.mark.parametrize("method", ["lime", "gradcam"])
def test_explain_draws_a_fusion_models_map_frame_by_frame(method, tiny_fusion_run, tiny_clip_paths, tmp_path):
    """A frame-level model (one-frame windows) through the standard forward: LIME and Grad-CAM."""
    lime = ["--samples", "32", "--superpixels", "10"] if method == "lime" else []
    code = main(["explain", str(tiny_clip_paths[0]), "--model", str(tiny_fusion_run / "model.pt"), "--method", method,
                 "--frames", "1,6", "--out", str(tmp_path), "--device", "cpu", *lime])
    assert code == 0
    assert len(list(tmp_path.glob(f"*.{method}.png"))) == 2
