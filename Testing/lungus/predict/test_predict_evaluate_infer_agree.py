"""`lungus evaluate` scores what `lungus infer` runs: for the same model file and clip, the
evaluation's per-clip output (a classifier's class distribution, a segmenter's masks) is the
inference engine's, because both build their predictor from the model card
(lungus.predict.card.predictor_from_card)."""

import dataclasses

import numpy as np
import pytest
import torch

from lungus.data.labels.schemes import A_LINE, B_LINE, BACKGROUND, PLEURA
from lungus.data.manifests.manifest import Manifest
from lungus.evaluate.model_eval import evaluate_model
from lungus.infer import Analyzer
from lungus.models.model_file import load_model_file, save_model_file

pytestmark = pytest.mark.torch


def clip_files(manifest_path) -> dict[str, object]:
    """The manifest's clip names (as evaluation reports them) -> their files."""
    manifest = Manifest.load(manifest_path)
    return dict(zip(manifest.column("clip"), manifest.clip_paths()))


@pytest.fixture
def segmenter_without_a_lines(tiny_models, tmp_path):
    """The tiny segmenter as one trained on labels that never draw A-lines: its card says so
    (``label_classes``), and its A-line logit, a class it never learned, wins everywhere."""
    loaded = load_model_file(tiny_models["segmenter"])
    with torch.no_grad():
        loaded.model.head.bias[A_LINE] += 10.0
    card = dataclasses.replace(
        loaded.card, extra={**loaded.card.extra, "label_classes": [BACKGROUND, PLEURA, B_LINE]}
    )
    return save_model_file(tmp_path / "segmenter.pt", loaded.model, card)


@pytest.fixture(params=[False, True], ids=["plain", "eval_flip"])
def classifier(request, tiny_models, tmp_path):
    """The tiny classifier, and the same model whose card asks for the mirror-image test-time
    average (the COVID-BLUES recipe's eval_flip)."""
    if not request.param:
        return tiny_models["classifier"]
    loaded = load_model_file(tiny_models["classifier"])
    card = dataclasses.replace(loaded.card, preprocessing={**loaded.card.preprocessing, "eval_flip": True})
    return save_model_file(tmp_path / "flip.pt", loaded.model, card)


def test_a_classifier_scores_each_clip_in_evaluation_as_inference_does(classifier, tiny_collection, tmp_path):
    evaluation = evaluate_model(classifier, tiny_collection, tmp_path / "eval", device="cpu",
                                n_boot=0, cache_dir=tmp_path / "cache", log=lambda _m: None)
    analyzer = Analyzer(classifier, device="cpu")
    files = clip_files(tiny_collection)
    assert len(evaluation.predictions) == len(files)
    for prediction in evaluation.predictions:
        inferred = analyzer.analyse(files[prediction["clip"]]).probabilities
        np.testing.assert_allclose(prediction["probabilities"], inferred, rtol=0, atol=1e-6)


def test_a_segmenter_masks_each_clip_in_evaluation_as_inference_does(segmenter_without_a_lines,
                                                                     tiny_collection, tmp_path):
    evaluation = evaluate_model(segmenter_without_a_lines, tiny_collection, tmp_path / "eval", device="cpu",
                                n_boot=0, cache_dir=tmp_path / "cache", log=lambda _m: None)
    analyzer = Analyzer(segmenter=segmenter_without_a_lines, device="cpu", runtime="torch")
    files = clip_files(tiny_collection)
    assert len(evaluation.predictions) == len(files)
    for prediction in evaluation.predictions:
        inferred = analyzer.analyse(files[prediction["clip"]]).segmentation.masks
        assert not (prediction["predicted"] == A_LINE).any()  # the card's label classes only
        np.testing.assert_array_equal(prediction["predicted"], inferred[prediction["frames"]])
