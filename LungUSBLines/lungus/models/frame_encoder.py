"""2-D per-frame encoders for the frame-based clip classifiers.

``simple`` is a small residual CNN whose width is a parameter (the CPU default);
``plain`` is a VGG-style CNN that keeps full resolution through its first stage, so
B-lines a few pixels wide survive on small inputs (the COVID-BLUES recipe uses it);
``resnet18``, ``resnet34`` and ``mobilenet_v3_small`` are torchvision backbones with a
one-channel stem, for ImageNet initialisation when the user has the weights.
"""

from __future__ import annotations

import torchvision
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock as BasicBlock2d

from lungus.models.layers import ConvNormAct, norm_2d
from lungus.models.registry import Arg
from lungus.models.weights import TORCHVISION_WEIGHTS, TorchvisionWeights

BACKBONES = ("simple", "plain", "resnet18", "resnet34", "mobilenet_v3_small")
TORCHVISION_BACKBONES = BACKBONES[2:]


class SimpleFrameEncoder(nn.Module):
    """Stem (stride 2) then four residual stages, each halving the size and doubling the width.

    Output stride 32: a 96x96 frame gives 3x3 maps of ``8 * width`` channels.
    """

    def __init__(self, width: int = 16, blocks: int = 1, norm: str = "batch", in_channels: int = 1) -> None:
        super().__init__()
        self.stem = ConvNormAct(in_channels, width, stride=2, norm=norm)
        stages: list[nn.Module] = []
        channels = width
        for stage in range(4):
            out = width * 2**stage
            layers: list[nn.Module] = []
            for index in range(blocks):
                stride = 2 if index == 0 else 1
                downsample = None
                if stride != 1 or channels != out:
                    downsample = nn.Sequential(
                        nn.Conv2d(channels, out, 1, stride=stride, bias=False), norm_2d(norm, out)
                    )
                layers.append(
                    BasicBlock2d(channels, out, stride, downsample, norm_layer=lambda c: norm_2d(norm, c))
                )
                channels = out
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.out_channels = channels
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        return self.stages(self.stem(x))

    def layer_groups(self) -> list[list[nn.Module]]:
        """The stem, then each stage: the learning-rate layers of fine-tuning (FrameCNN.layer_groups)."""
        return [[self.stem], *([stage] for stage in self.stages)]

    def cam_layer(self) -> nn.Module:
        """The stage Grad-CAM reads: the next-to-last (1/16 of the frame size), which localises
        thin B-lines much better than the 1/32 last stage."""
        return self.stages[-2]


class PlainFrameEncoder(nn.Module):
    """Four stages of [conv3x3-norm-ReLU x ``blocks + 1``, maxpool 2], widths w, 2w, 4w, 8w.

    Unlike the simple encoder there is no strided stem: the first stage works at the
    input resolution, which is what lets thin B-lines through at 64x64 (research log:
    the strided stem lost them on real clips).
    """

    def __init__(self, width: int = 16, blocks: int = 1, norm: str = "batch", in_channels: int = 1) -> None:
        super().__init__()
        stages: list[nn.Module] = []
        channels = in_channels
        for stage in range(4):
            out = width * 2**stage
            convs = [ConvNormAct(channels if i == 0 else out, out, norm=norm) for i in range(blocks + 1)]
            stages.append(nn.Sequential(*convs, nn.MaxPool2d(2)))
            channels = out
        self.stages = nn.Sequential(*stages)
        self.out_channels = channels

    def forward(self, x: Tensor) -> Tensor:
        return self.stages(x)

    def layer_groups(self) -> list[list[nn.Module]]:
        """Each stage: the learning-rate layers of fine-tuning (FrameCNN.layer_groups)."""
        return [[stage] for stage in self.stages]

    def cam_layer(self) -> nn.Module:
        """The last stage's convolutions, before its pooling (1/8 of the frame size)."""
        return self.stages[-1][-2]


def _one_channel_conv(conv: nn.Conv2d) -> nn.Conv2d:
    """The same convolution taking one input channel instead of three."""
    return nn.Conv2d(
        1, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=conv.bias is not None
    )


class TorchvisionFrameEncoder(nn.Module):
    """A torchvision ImageNet backbone, classifier removed, first convolution taking one channel.

    The module paths inside ``body`` are torchvision's, so ``lungus.models.weights`` can load
    ImageNet weights into it (summing the RGB filters of the first convolution).
    """

    def __init__(self, backbone: str) -> None:
        super().__init__()
        self.backbone = backbone
        if backbone.startswith("resnet"):
            net = getattr(torchvision.models, backbone)(weights=None)
            net.conv1 = _one_channel_conv(net.conv1)
            self.body = nn.Sequential(
                net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4
            )
            self.out_channels = net.fc.in_features
        elif backbone == "mobilenet_v3_small":
            net = torchvision.models.mobilenet_v3_small(weights=None)
            net.features[0][0] = _one_channel_conv(net.features[0][0])
            self.body = net.features
            self.out_channels = net.classifier[0].in_features
        else:
            raise ValueError(f"unknown backbone {backbone!r}; use one of {', '.join(BACKBONES)}")

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)

    def layer_groups(self) -> list[list[nn.Module]]:
        """The learning-rate layers of fine-tuning (FrameCNN.layer_groups): ResNet's stem (its first
        convolution and norm), then each of its four stages; MobileNetV3's blocks one by one."""
        if self.backbone.startswith("resnet"):
            return [[self.body[0], self.body[1]], *([stage] for stage in self.body[4:])]
        return [[block] for block in self.body]

    def cam_layer(self) -> nn.Module:
        """The last block at 1/16 of the frame size (ResNet layer3; MobileNetV3 block 8)."""
        return self.body[6] if self.backbone.startswith("resnet") else self.body[8]

    def torchvision_key(self, key: str) -> str:
        """Our state_dict key (under ``body.``) -> torchvision's key for the same tensor."""
        if self.backbone.startswith("resnet"):
            names = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
            index, rest = key.split(".", 1)
            return f"{names[int(index)]}.{rest}"
        return f"features.{key}"


def build_frame_encoder(backbone: str, width: int, blocks: int, norm: str, in_channels: int = 1) -> nn.Module:
    if backbone == "simple":
        return SimpleFrameEncoder(width=width, blocks=blocks, norm=norm, in_channels=in_channels)
    if backbone == "plain":
        return PlainFrameEncoder(width=width, blocks=blocks, norm=norm, in_channels=in_channels)
    if in_channels != 1:
        raise ValueError(f"the {backbone} backbone takes one input channel; use backbone=simple or plain")
    return TorchvisionFrameEncoder(backbone)


def encoder_torchvision_weights(encoder: nn.Module, prefix: str = "encoder.body.") -> TorchvisionWeights | None:
    """The ImageNet weights of a clip classifier's torchvision frame encoder (at ``prefix`` in its
    state_dict), for its ``torchvision_weights()``; None for the simple and plain encoders."""
    if not isinstance(encoder, TorchvisionFrameEncoder):
        return None
    return TORCHVISION_WEIGHTS[encoder.backbone], lambda key: (
        encoder.torchvision_key(key[len(prefix) :]) if key.startswith(prefix) else None
    )


def frame_encoder_args(default_width: int) -> tuple[Arg, ...]:
    """The registry arguments of a model built on ``build_frame_encoder``."""
    return (
        Arg(
            "width",
            default_width,
            "base channels of the simple frame encoder (8-32; output 8*width)",
            int,
            minimum=4,
            maximum=256,
        ),
        Arg("blocks", 1, "residual blocks per stage of the simple frame encoder", int, minimum=1, maximum=4),
        Arg(
            "norm",
            "batch",
            "normalisation in the simple frame encoder",
            str,
            choices=("batch", "group", "none"),
        ),
        Arg(
            "backbone",
            "simple",
            "frame encoder; torchvision backbones allow --pretrained (ImageNet)",
            str,
            choices=BACKBONES,
        ),
    )


def frame_encoder_check(args: dict, default_width: int) -> str | None:
    """Why these frame-encoder arguments do not go together, or None."""
    if args["backbone"] not in ("simple", "plain") and (
        args["width"] != default_width or args["blocks"] != 1 or args["norm"] != "batch"
    ):
        return (
            f"width, blocks and norm apply to the simple and plain backbones only; leave them at their defaults "
            f"with backbone={args['backbone']}"
        )
    return None
