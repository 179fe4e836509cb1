"""The U-Net family for frame-level multi-class segmentation (docs/architecture.md#segmentation-classes).

``UNetSmall`` is the real-time CPU default; ``UNetResNet`` puts a torchvision ResNet encoder
(ImageNet-initialisable) under the same decoder design. Both take any frame size: every
upsampling step resizes to its skip connection's size, so sizes need not be powers of two.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from lungus.models.base import Segmenter, check_image_input
from lungus.models.layers import ConvNormAct
from lungus.models.registry import SEGMENTER, Arg, register_model
from lungus.models.weights import TORCHVISION_WEIGHTS, TorchvisionWeights

RESNET_ENCODERS = ("resnet18", "resnet34")


class DoubleConv(nn.Sequential):
    def __init__(
        self, in_channels: int, out_channels: int, norm: str = "batch", separable: bool = False
    ) -> None:
        super().__init__(
            ConvNormAct(in_channels, out_channels, norm=norm, separable=separable),
            ConvNormAct(out_channels, out_channels, norm=norm, separable=separable),
        )


def _up_and_merge(x: Tensor, skip: Tensor) -> Tensor:
    x = F.interpolate(x, size=[skip.shape[-2], skip.shape[-1]], mode="bilinear", align_corners=False)
    return torch.cat([x, skip], dim=1)


@register_model(
    "unet_small",
    kind=SEGMENTER,
    summary="compact U-Net (max-pool down, bilinear up, BN): the real-time CPU segmenter",
    args=(
        Arg("width", 8, "channels at full resolution, doubling per level", int, minimum=2, maximum=256),
        Arg("levels", 4, "resolutions (3-6); the input is halved levels-1 times", int, minimum=2, maximum=6),
        Arg("separable", False, "depthwise-separable 3x3 convolutions instead of plain", bool),
        Arg("norm", "batch", "normalisation after each convolution", str, choices=("batch", "group", "none")),
        Arg("dropout", 0.0, "channel dropout before the classifier", float, minimum=0.0, maximum=1.0),
        Arg(
            "input_stride",
            1,
            "2: a stride-2 stem runs the U-Net at half resolution, logits upsampled (~4x faster)",
            int,
            choices=(1, 2),
        ),
    ),
    recommended_input={"size": [256, 256]},
)
class UNetSmall(Segmenter):
    """A compact U-Net: ``levels`` resolutions, ``width`` channels at the top, doubling per level,
    max-pool down, bilinear up, two 3x3 conv-norm-ReLU per level (optionally depthwise-separable).

    ``input_stride`` 2 starts with a stride-2 3x3 convolution, runs the U-Net at half the input
    resolution and upsamples the logits bilinearly to the input size: about four times less
    work for a full-size mask (the real-time CPU setting at 256x256).
    """

    def __init__(
        self,
        num_classes: int = 6,
        width: int = 16,
        levels: int = 4,
        separable: bool = False,
        norm: str = "batch",
        dropout: float = 0.0,
        in_channels: int = 1,
        input_stride: int = 1,
    ) -> None:
        super().__init__()
        if input_stride not in (1, 2):
            raise ValueError(f"input_stride must be 1 or 2, got {input_stride!r}")
        self.num_classes = num_classes
        self.input_stride = input_stride
        channels = [width * 2**level for level in range(levels)]
        self.stem = (
            nn.Identity() if input_stride == 1 else ConvNormAct(in_channels, width, stride=2, norm=norm)
        )
        first_in = in_channels if input_stride == 1 else width
        self.down = nn.ModuleList(
            DoubleConv(first_in if level == 0 else channels[level - 1], channels[level], norm, separable)
            for level in range(levels)
        )
        # up[i] merges level (levels-1-i) into level (levels-2-i).
        self.up = nn.ModuleList(
            DoubleConv(channels[level] + channels[level - 1], channels[level - 1], norm, separable)
            for level in range(levels - 1, 0, -1)
        )
        self.dropout = nn.Dropout2d(dropout)
        self.head = nn.Conv2d(channels[0], num_classes, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        check_image_input(x)
        size = [x.shape[-2], x.shape[-1]]
        x = self.stem(x)
        skips: list[Tensor] = []
        for level, block in enumerate(self.down):
            if level > 0:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        for index, block in enumerate(self.up):
            x = block(_up_and_merge(x, skips[len(skips) - 2 - index]))
        logits = self.head(self.dropout(x))
        if self.input_stride != 1:
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return logits


@register_model(
    "unet_resnet",
    kind=SEGMENTER,
    summary="U-Net with a torchvision ResNet-18/34 encoder (ImageNet weights with --pretrained)",
    args=(
        Arg("encoder", "resnet18", "torchvision ResNet encoder", str, choices=RESNET_ENCODERS),
        Arg(
            "decoder_width",
            16,
            "decoder channels at full resolution (x16 at the deepest level)",
            int,
            minimum=2,
            maximum=256,
        ),
        Arg("norm", "batch", "normalisation in the decoder", str, choices=("batch", "group", "none")),
        Arg("dropout", 0.0, "channel dropout before the classifier", float, minimum=0.0, maximum=1.0),
    ),
    recommended_input={"size": [256, 256]},
    pretrained_weights=lambda args: TORCHVISION_WEIGHTS[args["encoder"]],
)
class UNetResNet(Segmenter):
    """U-Net with a torchvision ResNet-18/34 encoder (one-channel stem) and a light decoder.

    ``encoder`` keeps torchvision's module names, so ImageNet weights load into it.
    """

    def __init__(
        self,
        num_classes: int = 6,
        encoder: str = "resnet18",
        decoder_width: int = 16,
        norm: str = "batch",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if encoder not in RESNET_ENCODERS:
            raise ValueError(f"encoder must be one of {RESNET_ENCODERS}, got {encoder!r}")
        self.num_classes = num_classes
        self.encoder_name = encoder
        net = getattr(torchvision.models, encoder)(weights=None)
        net.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        net.avgpool = nn.Identity()
        net.fc = nn.Identity()
        self.encoder = net
        d = decoder_width
        # Skips: conv1 (64 @ H/2), layer1 (64 @ H/4), layer2 (128 @ H/8), layer3 (256 @ H/16); layer4 512 @ H/32.
        self.decode = nn.ModuleList(
            [
                DoubleConv(512 + 256, 16 * d, norm),
                DoubleConv(16 * d + 128, 8 * d, norm),
                DoubleConv(8 * d + 64, 4 * d, norm),
                DoubleConv(4 * d + 64, 2 * d, norm),
            ]
        )
        self.final = DoubleConv(2 * d, d, norm)
        self.dropout = nn.Dropout2d(dropout)
        self.head = nn.Conv2d(d, num_classes, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        check_image_input(x)
        e = self.encoder
        stem = e.relu(e.bn1(e.conv1(x)))
        s1 = e.layer1(e.maxpool(stem))
        s2 = e.layer2(s1)
        s3 = e.layer3(s2)
        y = e.layer4(s3)
        skips = [s3, s2, s1, stem]
        for index, block in enumerate(self.decode):
            y = block(_up_and_merge(y, skips[index]))
        y = F.interpolate(y, size=[x.shape[-2], x.shape[-1]], mode="bilinear", align_corners=False)
        return self.head(self.dropout(self.final(y)))

    def torchvision_weights(self) -> TorchvisionWeights:
        """ImageNet weights for the encoder."""
        return TORCHVISION_WEIGHTS[self.encoder_name], lambda key: (
            key[len("encoder.") :] if key.startswith("encoder.") else None
        )
