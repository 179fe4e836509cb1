"""Starting weights: --pretrained without internet fails clearly; --init and torchvision-layout
weights load correctly (a grayscale stem equals the RGB model fed the gray frame three times)."""

from __future__ import annotations

import socket

import pytest
import torch
import torchvision

from lungus.errors import LungUSError
from lungus.models import build_model, load_init_weights, save_model_file
from lungus.models.frame_encoder import TorchvisionFrameEncoder
from lungus.models.weights import torchvision_key_map

torch.set_num_threads(1)


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty TORCH_HOME and no network: what a hospital workstation without internet sees."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))

    def refuse(*args, **kwargs):
        raise OSError("network is blocked in tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return tmp_path / "torch_home"


@pytest.mark.parametrize(
    "name, args, weights",
    [
        ("r2plus1d_18", {}, "R2Plus1D_18_Weights.KINETICS400_V1"),
        ("frame_cnn", {"backbone": "resnet18"}, "ResNet18_Weights.IMAGENET1K_V1"),
    ],
)
def test_pretrained_without_internet_says_how_to_get_the_weights(offline, name, args, weights):
    with pytest.raises(LungUSError) as error:
        build_model(name, 2, pretrained=True, **args)
    message = str(error.value)
    assert f"could not download torchvision weights {weights}" in message
    assert "(no internet?)" in message and "TORCH_HOME" in message and "--init PATH" in message
    assert str(offline) in message and "\n" not in message


def test_pretrained_and_init_together_are_refused(tmp_path):
    with pytest.raises(LungUSError, match="either --pretrained or --init PATH, not both"):
        build_model("unet_resnet", 6, pretrained=True, init=tmp_path / "w.pt")


def gray_as_rgb(x: torch.Tensor) -> torch.Tensor:
    return x.repeat_interleave(3, dim=1)


def test_kinetics_layout_weights_fit_our_one_channel_r2plus1d(tmp_path):
    # A torchvision R(2+1)D-18 with its own (random) weights stands in for the Kinetics file.
    torch.manual_seed(0)
    reference = torchvision.models.video.r2plus1d_18(weights=None).eval()
    torch.save(reference.state_dict(), tmp_path / "r2plus1d_18.pth")
    ours = build_model("r2plus1d_18", 400, init=tmp_path / "r2plus1d_18.pth").eval()
    x = torch.randn(1, 1, 4, 32, 32)
    with torch.no_grad():
        assert torch.allclose(ours(x), reference(gray_as_rgb(x)), atol=1e-5)


def test_imagenet_layout_weights_fit_the_resnet18_frame_encoder(tmp_path):
    torch.manual_seed(0)
    reference = torchvision.models.resnet18(weights=None).eval()
    model = build_model("frame_cnn", 2, backbone="resnet18").eval()
    report = load_init_weights(model, _saved(tmp_path, reference.state_dict()))
    assert all(key.startswith("encoder.") for key in report.loaded)
    assert not any(key.startswith("encoder.") for key in report.kept)
    frame = torch.randn(2, 1, 64, 64)
    trunk = torch.nn.Sequential(*list(reference.children())[:-2])
    with torch.no_grad():
        assert torch.allclose(model.encoder(frame), trunk(gray_as_rgb(frame)), atol=1e-5)


def test_pretrained_mapping_covers_the_whole_unet_resnet_encoder():
    model = build_model("unet_resnet", 6)
    key_map = torchvision_key_map(model)
    reference = set(torchvision.models.resnet18(weights=None).state_dict())
    mapped = {key_map(key) for key in model.state_dict() if key_map(key) is not None}
    assert mapped == reference - {"fc.weight", "fc.bias"}


def test_mobilenet_frame_encoder_maps_to_torchvision_names():
    encoder = TorchvisionFrameEncoder("mobilenet_v3_small")
    reference = set(torchvision.models.mobilenet_v3_small(weights=None).features.state_dict())
    assert {encoder.torchvision_key(key) for key in encoder.body.state_dict()} == {
        f"features.{k}" for k in reference
    }


def _saved(tmp_path, state):
    path = tmp_path / "weights.pt"
    torch.save(state, path)
    return path


def test_init_from_a_model_file_reproduces_the_model(tmp_path):
    from lungus.models import IMAGENET_GRAY, architecture, task_class_names

    torch.manual_seed(1)
    source = build_model("frame_cnn", 2, width=4).eval()
    card = {
        "task": "bline2",
        "class_names": task_class_names("bline2"),
        "architecture": architecture("frame_cnn", width=4),
        "label_source": "truth",
        "preprocessing": {"size": [32, 32], "frames": 4, "normalisation": IMAGENET_GRAY, "fan_crop": True},
    }
    path = save_model_file(tmp_path / "source.pt", source, card)
    model = build_model("frame_cnn", 2, width=4, init=path).eval()
    x = torch.randn(1, 1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), source(x))


def test_init_with_another_class_count_keeps_a_fresh_head(tmp_path):
    source = build_model("frame_cnn", 2, width=4)
    model = build_model("frame_cnn", 4, width=4)
    report = load_init_weights(model, _saved(tmp_path, source.state_dict()))
    assert report.kept == ["head.weight", "head.bias"]
    assert torch.equal(model.encoder.stem[0].weight, source.encoder.stem[0].weight)


def test_init_from_a_ddp_checkpoint_strips_the_module_prefix(tmp_path):
    source = build_model("unet_small", 6, width=4)
    checkpoint = {"epoch": 3, "model": {f"module.{k}": v for k, v in source.state_dict().items()}}
    model = build_model("unet_small", 6, width=4)
    report = load_init_weights(model, _saved(tmp_path, checkpoint))
    assert not report.kept


def test_init_with_nothing_in_common_is_an_error(tmp_path):
    path = _saved(tmp_path, build_model("unet_small", 6, width=4).state_dict())
    with pytest.raises(LungUSError, match="none of its .* tensors fit FrameCNN"):
        build_model("frame_cnn", 2, width=4, init=path)


def test_init_from_a_missing_file_is_an_error(tmp_path):
    with pytest.raises(LungUSError, match=r"nope\.pt: no such weights file; check the --init path"):
        build_model("frame_cnn", 2, init=tmp_path / "nope.pt")


def test_init_from_garbage_is_an_error(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"garbage" * 20)
    with pytest.raises(LungUSError, match=r"junk\.pt: not a weights file that loads safely"):
        build_model("frame_cnn", 2, init=tmp_path / "junk.pt")
