"""LungUSTrainLib.training.retrain_request: "Retrain from reviews" fine-tunes the reviewed model on
a review folder, with the reviewer's labels and the model's own architecture and input."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("slicer", reason="slicer-core is not installed")

from lungus.errors import LungUSError  # noqa: E402
from lungus.io import Clip, write_clip  # noqa: E402
from lungus.review.store import ReviewFolder, Verdict  # noqa: E402
from LungUSTrainLib import training  # noqa: E402


@pytest.fixture
def reviews(tmp_path):
    """A review folder with tom's bline3 verdicts on three clip files."""
    folder = ReviewFolder(tmp_path / "reviews")
    frames = np.zeros((4, 40, 48), np.uint8)
    for i, label in enumerate(("none", "discrete", "confluent")):
        clip = write_clip(Clip(frames + 40 * i, fps=10.0), tmp_path / "clips" / f"clip{i}.seq.nrrd")
        folder.record(
            Verdict(clip=str(clip), reviewer="tom", scheme="bline3", label=label, model_label="none")
        )
    return folder.folder


def _config(request):
    from lungus.cli import build_parser
    from lungus.commands.train import setting_overrides
    from lungus.train.config import TrainConfig

    args = build_parser().parse_args(["train", *request.arguments()])
    return TrainConfig.from_sources(args.config, **setting_overrides(args))


@pytest.mark.torch
def test_retraining_starts_from_the_reviewed_model_with_the_reviewers_labels(reviews, tiny_models, tmp_path):
    from lungus.models.model_files import read_card
    from lungus.models.registry import architecture

    request = training.retrain_request(
        reviews, "tom", tiny_models["bline3"], tmp_path / "run", epochs=2, device="cpu"
    )
    config = _config(request.validate())
    assert config.manifest == str(reviews / "manifest.csv")
    assert (config.label_source, config.init, config.epochs) == ("expert:tom", str(tiny_models["bline3"]), 2)
    card = read_card(tiny_models["bline3"])
    assert config.task == "bline3"
    assert architecture(config.model, **config.model_args) == card.architecture  # the same network
    assert config.card_preprocessing(card.preprocessing["normalisation"]) == card.preprocessing  # same input


@pytest.mark.torch
@pytest.mark.parametrize(
    ("reviewer", "model", "message"),
    [
        ("ana", "bline3", "no verdicts by 'ana'"),
        ("tom", "classifier", "the reviews are bline3 labels but the model is a bline2 classifier"),
        ("tom", "segmenter", "a seg model: retrain a segmenter on the corrected masks with `lungus train"),
        ("tom smith", "bline3", "reviewer name 'tom smith' must be"),
    ],
)
def test_retraining_refuses_what_would_not_train(reviews, tiny_models, tmp_path, reviewer, model, message):
    with pytest.raises(LungUSError, match=message):
        training.retrain_request(reviews, reviewer, tiny_models[model], tmp_path / "run")


def test_retraining_needs_a_review_folder_and_a_model_file(tmp_path):
    with pytest.raises(LungUSError, match="no reviews here"):
        training.retrain_request(tmp_path, "tom", tmp_path / "model.pt", tmp_path / "run")
    (tmp_path / "manifest.csv").write_text("clip,patient\n")
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(LungUSError, match="choose the reviewed model's .pt file"):
        training.retrain_request(tmp_path, "tom", tmp_path / "model.onnx", tmp_path / "run")
