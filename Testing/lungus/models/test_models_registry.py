"""The model registry: every model's input/output contract, argument validation, explanations."""

from __future__ import annotations

import pytest
import torch

from lungus.errors import LungUSError
from lungus.models import (
    CLASSIFIER,
    SEGMENTER,
    architecture,
    available_models,
    build_model,
    describe_model,
    parse_arch_args,
)

torch.set_num_threads(1)

# Tiny widths so each forward takes milliseconds.
TINY = {
    "r2plus1d_18": {"width": 4},
    "r3d_18": {"width": 4},
    "frame_cnn": {"width": 4, "attention_hidden": 8},
    "cnn_lstm": {"width": 4, "hidden": 8, "attention_hidden": 8},
    "unet_small": {"width": 4, "levels": 3},
    "unet_resnet": {"decoder_width": 4},
}


def tiny(name: str, num_classes: int, **extra) -> torch.nn.Module:
    return build_model(name, num_classes, **{**TINY[name], **extra}).eval()


def test_registry_lists_the_issue_models():
    assert set(available_models(CLASSIFIER)) == {"r2plus1d_18", "r3d_18", "cnn_lstm", "frame_cnn"}
    assert set(available_models(SEGMENTER)) == {"unet_small", "unet_resnet"}
    assert set(TINY) == set(available_models())


@pytest.mark.parametrize("name", ["r2plus1d_18", "r3d_18", "frame_cnn", "cnn_lstm"])
@pytest.mark.parametrize("frames", [1, 3, 7])
def test_classifier_returns_logits_for_any_clip_length(name, frames):
    model = tiny(name, 3)
    with torch.no_grad():
        logits = model(torch.randn(2, 1, frames, 40, 48))
    assert logits.shape == (2, 3)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", ["r2plus1d_18", "r3d_18", "frame_cnn", "cnn_lstm"])
def test_explain_gives_per_frame_evidence_consistent_with_logits(name):
    model = tiny(name, 3)
    x = torch.randn(2, 1, 5, 40, 48)
    with torch.no_grad():
        logits, details = model(x), model.explain(x)
    assert torch.allclose(details["logits"], logits, atol=1e-5)
    assert details["frame_logits"].shape == (2, 5, 3)
    assert details["frame_weights"].shape == (2, 5)
    assert torch.allclose(details["frame_weights"].sum(dim=1), torch.ones(2), atol=1e-5)
    assert "class_maps" in details or "spatial_attention" in details


@pytest.mark.parametrize(
    "name, args", [("frame_cnn", {}), ("frame_cnn", {"pooling": "mean"}), ("cnn_lstm", {})]
)
def test_clip_logits_are_the_attention_weighted_frame_logits(name, args):
    # The shared linear head makes the frame curve an exact decomposition of the clip score.
    model = tiny(name, 2, **args)
    with torch.no_grad():
        details = model.explain(torch.randn(3, 1, 6, 32, 32))
    pooled = torch.einsum("bt,btk->bk", details["frame_weights"], details["frame_logits"])
    assert torch.allclose(pooled, details["logits"], atol=1e-5)


def test_video_resnet_class_maps_average_to_the_logits():
    model = tiny("r3d_18", 2)
    x = torch.randn(1, 1, 8, 48, 48)
    with torch.no_grad():
        details = model.explain(x)
    # The maps are stretched over time; before stretching their mean is exactly the logits (CAM).
    assert details["class_maps"].shape[:3] == (1, 8, 2)
    assert torch.allclose(details["class_maps"].mean(dim=(1, 3, 4)), details["logits"], atol=1e-4)


@pytest.mark.parametrize(
    "name, args",
    [
        ("frame_cnn", {"pooling": "attention"}),
        ("frame_cnn", {"pooling": "mean"}),
        ("frame_cnn", {"pooling": "max"}),
        ("cnn_lstm", {}),
    ],
)
def test_padded_frames_do_not_change_a_clips_logits(name, args):
    model = tiny(name, 2, **args)
    clip = torch.randn(1, 1, 3, 32, 32)
    padded = torch.cat([clip, torch.zeros(1, 1, 4, 32, 32)], dim=2)
    mask = torch.tensor([[True] * 3 + [False] * 4])
    with torch.no_grad():
        assert torch.allclose(model(clip), model(padded, mask), atol=1e-5)


def test_video_resnet_rejects_partial_frame_masks():
    model = tiny("r3d_18", 2)
    with pytest.raises(ValueError, match="fixed-length windows"):
        model(torch.randn(1, 1, 4, 32, 32), torch.tensor([[True, True, False, False]]))


def test_frame_mask_with_padding_first_is_rejected():
    with pytest.raises(ValueError, match="real frames first"):
        tiny("frame_cnn", 2)(torch.randn(1, 1, 3, 32, 32), torch.tensor([[False, True, True]]))


def test_classifier_explains_wrong_input_shape():
    with pytest.raises(ValueError, match=r"\(B, 1, T, H, W\)"):
        tiny("frame_cnn", 2)(torch.randn(2, 5, 32, 32))


@pytest.mark.parametrize("name", ["unet_small", "unet_resnet"])
def test_segmenter_keeps_frame_size_even_when_not_a_power_of_two(name):
    with torch.no_grad():
        logits = tiny(name, 6)(torch.randn(2, 1, 70, 90))
    assert logits.shape == (2, 6, 70, 90)


def test_segmenter_explains_wrong_input_shape():
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        tiny("unet_small", 6)(torch.randn(2, 1, 3, 64, 64))


def test_unknown_model_names_the_choices():
    with pytest.raises(LungUSError, match="unknown model 'resnet50'; choose one of r2plus1d_18"):
        build_model("resnet50", 2)


def test_unknown_argument_lists_the_real_ones():
    with pytest.raises(LungUSError, match="has no argument 'depth'; its arguments are width, blocks"):
        build_model("frame_cnn", 2, depth=3)


@pytest.mark.parametrize(
    "args, message",
    [
        ({"width": 0}, "width=0 must be >= 4"),
        ({"pooling": "sum"}, "pooling='sum' is not one of attention, mean, max"),
        ({"dropout": 1.5}, "dropout=1.5 must be < 1.0"),
        ({"width": "wide"}, "width='wide' must be a whole number"),
        ({"temporal_kernel": 4}, "temporal_kernel must be 0 or odd"),
        ({"backbone": "resnet18", "width": 8}, "apply to the simple and plain backbones only"),
    ],
)
def test_bad_argument_values_say_what_to_do(args, message):
    with pytest.raises(LungUSError, match=message):
        build_model("frame_cnn", 2, **args)


def test_bad_num_classes_is_rejected():
    with pytest.raises(LungUSError, match="num_classes must be a positive whole number"):
        build_model("frame_cnn", 0)


def test_command_line_strings_are_coerced_to_argument_types():
    args = parse_arch_args(["width=8", "pooling=max", "dropout=0.1", "blocks=2", "context=true"])
    assert architecture("frame_cnn", **args)["args"] == {
        "width": 8,
        "blocks": 2,
        "norm": "batch",
        "backbone": "simple",
        "pooling": "max",
        "attention_hidden": 64,
        "temporal_kernel": 0,
        "dropout": 0.1,
        "context": True,
    }


def test_arch_arg_without_equals_is_rejected():
    with pytest.raises(LungUSError, match="must look like NAME=VALUE"):
        parse_arch_args(["width"])


def test_pretrained_needs_torchvision_width():
    with pytest.raises(LungUSError, match="no torchvision pretrained weights.*width=64"):
        build_model("r2plus1d_18", 2, pretrained=True, width=16)


def test_pretrained_is_refused_for_the_simple_frame_encoder():
    with pytest.raises(LungUSError, match="pick a torchvision backbone"):
        build_model("frame_cnn", 2, pretrained=True)


def test_describe_documents_input_contract_and_arguments():
    text = describe_model("cnn_lstm")
    assert "(B, 1, T, H, W)" in text and "hidden (default 64)" in text and "normalised" in text


def test_built_model_records_its_architecture():
    model = build_model("unet_small", 6, width=4)
    assert '"name": "unet_small"' in model.architecture_json and '"width": 4' in model.architecture_json


def test_normalise_frames_uses_the_card_numbers():
    import numpy as np

    from lungus.models import normalise_frames

    frames = np.array([[0, 255]], dtype=np.uint8)
    out = normalise_frames(frames, {"mean": 0.5, "std": 0.25})
    assert out.dtype == torch.float32 and out.tolist() == [[-2.0, 2.0]]


def test_normalise_frames_wants_uint8():
    import numpy as np

    from lungus.models import normalise_frames

    with pytest.raises(ValueError, match="expects uint8 frames"):
        normalise_frames(np.zeros((2, 2), dtype=np.float32), {"mean": 0.5, "std": 0.25})


def test_spec_normalisation_follows_the_pretraining_data():
    from lungus.models import IMAGENET_GRAY, KINETICS_GRAY, get_spec

    spec = get_spec("r3d_18")
    assert spec.normalisation(True, spec.check_args({})) == KINETICS_GRAY
    assert spec.normalisation(False, spec.check_args({})) == IMAGENET_GRAY


@pytest.fixture
def scratch_registry(monkeypatch):
    """The registry, restored after the test (registering is global, as torchvision's)."""
    from lungus.models import registry

    monkeypatch.setattr(registry, "MODEL_REGISTRY", dict(registry.MODEL_REGISTRY))
    return registry


def test_a_registered_model_is_built_by_name_and_listed_in_the_unknown_name_error(scratch_registry):
    @scratch_registry.register_model(
        "tiny_probe",
        kind=CLASSIFIER,
        summary="a linear probe on the clip mean",
        args=(scratch_registry.Arg("scale", 1.0, "input scale", float, minimum=0.0),),
    )
    def tiny_probe(num_classes: int, scale: float) -> torch.nn.Module:
        return torch.nn.Linear(1, num_classes)

    assert isinstance(build_model("tiny_probe", 3, scale="2"), torch.nn.Linear)
    assert "tiny_probe" in available_models(CLASSIFIER)
    with pytest.raises(LungUSError) as error:
        build_model("resnet50", 2)
    for name in scratch_registry.MODEL_REGISTRY:
        assert name in str(error.value)
    assert str(error.value).startswith("unknown model 'resnet50'; choose one of ")


def test_registering_a_taken_name_is_refused(scratch_registry):
    before = scratch_registry.MODEL_REGISTRY["frame_cnn"]
    refusal = "'frame_cnn' is already registered .*FrameCNN.*register yours under another name"
    with pytest.raises(ValueError, match=refusal):
        scratch_registry.register_model("frame_cnn", kind=CLASSIFIER, summary="another")(torch.nn.Identity)
    assert scratch_registry.MODEL_REGISTRY["frame_cnn"] is before
