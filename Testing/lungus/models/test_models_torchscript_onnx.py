"""TorchScript and ONNX export: same outputs as the model, any batch/T/size, the card reads back."""

from __future__ import annotations

import hashlib

import onnx
import pytest
import torch

from lungus.errors import LungUSError
from lungus.models import (
    IMAGENET_GRAY,
    ModelCard,
    architecture,
    build_model,
    export_onnx,
    export_torchscript,
    file_kind,
    load_for_inference,
    load_onnx,
    load_torchscript,
    open_model,
    read_card,
    save_model_file,
    task_class_names,
)
from lungus.models.model_file import weights_digest

torch.set_num_threads(1)


def card_for(task: str, name: str, args: dict) -> ModelCard:
    return ModelCard(
        task=task,
        class_names=task_class_names(task),
        architecture=architecture(name, **args),
        preprocessing={
            "size": [32, 32],
            "frames": None if task == "seg" else 3,
            "target_fps": None,
            "normalisation": dict(IMAGENET_GRAY),
            "fan_crop": False,
        },
        label_source="truth",
        validation_metrics={"auc": 0.93},
        name=f"{name}-{task}",
    ).stamped()


def trained_like(name: str, num_classes: int, **args) -> torch.nn.Module:
    """A model with non-default BatchNorm statistics, so folding them into convolutions is exercised."""
    torch.manual_seed(0)
    model = build_model(name, num_classes, **args).train()
    shape = (4, 1, 3, 32, 32) if name != "unet_small" else (4, 1, 32, 32)
    with torch.no_grad():
        model(torch.randn(shape) * 2 + 0.5)
    return model.eval()


CLASSIFIER = ("frame_cnn", {"width": 4, "attention_hidden": 8, "temporal_kernel": 3})
SEGMENTER = ("unet_small", {"width": 4, "levels": 3})


@pytest.fixture(scope="module")
def classifier():
    """The model and its card as files of it carry it: naming its weights' digest."""
    name, args = CLASSIFIER
    model, card = trained_like(name, 3, **args), card_for("bline3", name, args)
    card.weights_sha256 = weights_digest(model.state_dict())
    return model, card


@pytest.fixture(scope="module")
def segmenter():
    name, args = SEGMENTER
    return trained_like(name, 6, **args), card_for("seg", name, args)


@pytest.fixture(scope="module")
def onnx_classifier(classifier, tmp_path_factory):
    model, card = classifier
    return export_onnx(model, card, tmp_path_factory.mktemp("onnx") / "classifier.onnx")


@pytest.mark.parametrize("shape", [(1, 1, 3, 32, 32), (2, 1, 7, 40, 56)])
def test_torchscript_classifier_matches_eager_for_any_clip_shape(tmp_path, classifier, shape):
    model, card = classifier
    exported = load_torchscript(export_torchscript(model, card, tmp_path / "c.ts"))
    x = torch.randn(shape)
    with torch.no_grad():
        assert torch.allclose(exported.model(x), model(x), atol=1e-5)


def test_torchscript_carries_the_card(tmp_path, classifier):
    model, card = classifier
    path = export_torchscript(model, card, tmp_path / "c.ts")
    assert load_torchscript(path).card == card
    assert read_card(path) == card


def test_torchscript_segmenter_matches_eager(tmp_path, segmenter):
    model, card = segmenter
    exported = load_torchscript(export_torchscript(model, card, tmp_path / "s.ts"))
    x = torch.randn(2, 1, 48, 40)
    with torch.no_grad():
        assert torch.allclose(exported.model(x), model(x), atol=1e-5)


def test_export_leaves_the_model_in_training_mode(tmp_path, segmenter):
    model, card = segmenter
    model.train()
    try:
        export_torchscript(model, card, tmp_path / "s.ts")
        assert model.training
    finally:
        model.eval()


@pytest.mark.parametrize("shape", [(1, 1, 3, 32, 32), (3, 1, 9, 48, 40)])
def test_onnx_classifier_matches_eager_with_dynamic_batch_frames_and_size(onnx_classifier, classifier, shape):
    model, _ = classifier
    session = load_onnx(onnx_classifier, threads=1)
    x = torch.randn(shape)
    with torch.no_grad():
        expected = model(x).numpy()
    assert session(x).shape == expected.shape
    assert abs(session(x) - expected).max() < 1e-4


def test_onnx_carries_the_card(onnx_classifier, classifier):
    _, card = classifier
    assert load_onnx(onnx_classifier).card == card
    assert read_card(onnx_classifier) == card
    meta = {p.key for p in onnx.load(str(onnx_classifier)).metadata_props}
    assert {"lungus_card", "lungus_format_version"} <= meta


def test_onnx_segmenter_matches_eager(tmp_path, segmenter):
    model, card = segmenter
    session = load_onnx(export_onnx(model, card, tmp_path / "s.onnx"), threads=1)
    x = torch.randn(2, 1, 64, 48)
    with torch.no_grad():
        assert abs(session(x) - model(x).numpy()).max() < 1e-4


def test_read_card_works_for_model_files_too(tmp_path, classifier):
    model, card = classifier
    assert read_card(save_model_file(tmp_path / "m.pt", model, card)) == card


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torchscript_without_a_card_is_rejected(tmp_path):
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(tmp_path / "plain.ts"))
    with pytest.raises(LungUSError, match=r"plain\.ts: TorchScript file has no embedded lungus card"):
        load_torchscript(tmp_path / "plain.ts")


def test_onnx_without_a_card_is_rejected(tmp_path, onnx_classifier):
    proto = onnx.load(str(onnx_classifier))
    del proto.metadata_props[:]
    onnx.save(proto, str(tmp_path / "bare.onnx"))
    with pytest.raises(LungUSError, match=r"bare\.onnx: ONNX file has no embedded lungus card"):
        read_card(tmp_path / "bare.onnx")


def test_card_that_does_not_describe_the_model_is_refused(tmp_path, classifier):
    model, _ = classifier
    with pytest.raises(LungUSError, match="is not the model's"):
        export_torchscript(model, card_for("bline3", "frame_cnn", {"width": 8}), tmp_path / "x.ts")


def test_read_card_of_an_unknown_file_says_so(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(LungUSError, match=r"notes\.txt: not a lungus model, TorchScript or ONNX file"):
        read_card(tmp_path / "notes.txt")


def test_load_for_inference_runs_every_kind_of_file_alike(tmp_path, classifier, onnx_classifier):
    model, card = classifier
    paths = {
        "model": save_model_file(tmp_path / "m.pt", model, card),
        "torchscript": export_torchscript(model, card, tmp_path / "m.ts"),
        "onnx": onnx_classifier,
    }
    x = torch.randn(2, 1, 5, 32, 32)
    with torch.no_grad():
        expected = model(x)
    for kind, path in paths.items():
        runnable = load_for_inference(path, threads=1)
        assert runnable.kind == kind and runnable.card == card
        assert torch.allclose(runnable(x), expected, atol=1e-4), kind
    assert load_for_inference(paths["model"]).module is not None  # explanations need the eager model


def test_open_model_opens_every_kind_of_file_with_its_card_and_source(tmp_path, classifier, onnx_classifier):
    model, card = classifier
    paths = {
        "model": save_model_file(tmp_path / "m.pt", model, card),
        "torchscript": export_torchscript(model, card, tmp_path / "m.ts"),
        "onnx": onnx_classifier,
    }
    for kind, path in paths.items():
        opened = open_model(path, "cpu", threads=1)
        assert file_kind(path) == opened.source.kind == kind
        assert opened.card == card == read_card(path)
        assert opened.source.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert opened.source.id == f"{card.name}:{opened.source.sha256[:8]}"
