"""R3D-18 and R(2+1)D-18 (Tran et al. 2018; Lucassen 2023's best B-line models) for grayscale clips.

Built from torchvision's own blocks, with the same module names as
``torchvision.models.video.r3d_18`` / ``r2plus1d_18``, so Kinetics-400 weights load directly
at ``width=64``; smaller widths give CPU-sized variants of the same design.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.models.video.resnet import BasicBlock, Conv2Plus1D, Conv3DSimple

from lungus.models.base import VideoClassifier, check_video_input, frame_mask_or_none
from lungus.models.layers import resize_time
from lungus.models.registry import CLASSIFIER, Arg, register_model
from lungus.models.weights import TORCHVISION_WEIGHTS, TorchvisionWeights

VARIANTS = ("r3d", "r2plus1d")


def _stem(variant: str, in_channels: int, width: int) -> nn.Sequential:
    if variant == "r3d":
        return nn.Sequential(
            nn.Conv3d(in_channels, width, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
            nn.BatchNorm3d(width),
            nn.ReLU(inplace=True),
        )
    # torchvision's R(2+1)D stem has 45 intermediate channels for 64 outputs; keep that ratio.
    mid = max(1, 45 * width // 64)
    return nn.Sequential(
        nn.Conv3d(in_channels, mid, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
        nn.BatchNorm3d(mid),
        nn.ReLU(inplace=True),
        nn.Conv3d(mid, width, (3, 1, 1), stride=(1, 1, 1), padding=(1, 0, 0), bias=False),
        nn.BatchNorm3d(width),
        nn.ReLU(inplace=True),
    )


class VideoResNet(VideoClassifier):
    """An 18-layer video ResNet with configurable base width (64 = torchvision's)."""

    gradcam_layout = "video"

    def __init__(
        self,
        num_classes: int,
        variant: str = "r2plus1d",
        width: int = 64,
        blocks: tuple[int, int, int, int] = (2, 2, 2, 2),
        dropout: float = 0.0,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        self.num_classes = num_classes
        self.variant = variant
        conv: type[Conv2Plus1D | Conv3DSimple] = Conv2Plus1D if variant == "r2plus1d" else Conv3DSimple
        self.stem = _stem(variant, in_channels, width)
        self._inplanes = width
        self.layer1 = self._make_layer(conv, width, blocks[0], stride=1)
        self.layer2 = self._make_layer(conv, 2 * width, blocks[1], stride=2)
        self.layer3 = self._make_layer(conv, 4 * width, blocks[2], stride=2)
        self.layer4 = self._make_layer(conv, 8 * width, blocks[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(8 * width, num_classes)
        # torchvision's initialisation, so a from-scratch model starts where torchvision's would.
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)

    def _make_layer(
        self, conv: type[Conv2Plus1D | Conv3DSimple], planes: int, count: int, stride: int
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self._inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv3d(self._inplanes, planes, 1, stride=conv.get_downsample_stride(stride), bias=False),
                nn.BatchNorm3d(planes),
            )
        layers = [BasicBlock(self._inplanes, planes, conv, stride, downsample)]
        self._inplanes = planes
        layers += [BasicBlock(planes, planes, conv) for _ in range(1, count)]
        return nn.Sequential(*layers)

    def features(self, x: Tensor) -> Tensor:
        """(B, 1, T, H, W) -> layer4 features (B, C, T', h, w)."""
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))

    def _check(self, x: Tensor, frame_mask: Tensor | None) -> None:
        check_video_input(x)
        mask = frame_mask_or_none(frame_mask, x.shape[0], x.shape[2])
        if mask is not None and not bool(mask.all()):
            raise ValueError(
                "video ResNets convolve over whole windows and cannot skip padded frames; "
                "sample fixed-length windows (repeat short clips) instead of passing a partial frame_mask"
            )

    def forward(self, x: Tensor, frame_mask: Tensor | None = None) -> Tensor:
        self._check(x, frame_mask)
        return self.fc(self.dropout(self.avgpool(self.features(x)).flatten(1)))

    def explain(self, x: Tensor, frame_mask: Tensor | None = None) -> dict[str, Tensor]:
        self._check(x, frame_mask)
        features = self.features(x)
        # Average pooling then a linear layer: the class maps are exact (CAM, Zhou et al. 2016).
        maps = (
            torch.einsum("bcthw,kc->btkhw", features, self.fc.weight)
            + self.fc.bias[None, None, :, None, None]
        )
        frames = x.shape[2]
        return {
            "logits": maps.mean(dim=(1, 3, 4)),
            "frame_logits": resize_time(maps.mean(dim=(3, 4)), frames),
            "frame_weights": torch.full((x.shape[0], frames), 1.0 / frames, device=x.device),
            "class_maps": resize_time(maps, frames),
        }

    def gradcam_layer(self) -> nn.Module:
        return self.layer4

    def torchvision_weights(self) -> TorchvisionWeights:
        """Kinetics-400 weights for all but the classifier (they fit at width 64)."""
        return TORCHVISION_WEIGHTS[self.variant], lambda key: None if key.startswith("fc.") else key


_ARGS = (
    Arg(
        "width",
        64,
        "base channels (64 = torchvision's and its pretrained weights; 8-16 for a tiny CPU "
        "variant); stages have width, 2x, 4x, 8x",
        int,
        minimum=4,
        maximum=128,
    ),
    Arg("dropout", 0.0, "dropout before the classifier", float, minimum=0.0, maximum=1.0),
)
_INPUT = {"size": [112, 112], "frames": 16}


def _kinetics_weights(variant: str):
    """The registry's ``pretrained_weights``: torchvision's Kinetics-400 weights fit width 64 only."""
    return lambda args: TORCHVISION_WEIGHTS[variant] if args["width"] == 64 else None


@register_model(
    "r2plus1d_18",
    kind=CLASSIFIER,
    summary="R(2+1)D-18 video ResNet (torchvision design, 1-channel stem); Lucassen 2023's best B-line model",
    args=_ARGS,
    recommended_input=_INPUT,
    pretrained_weights=_kinetics_weights("r2plus1d"),
)
def r2plus1d_18(num_classes: int, width: int, dropout: float) -> VideoResNet:
    return VideoResNet(num_classes, variant="r2plus1d", width=width, dropout=dropout)


@register_model(
    "r3d_18",
    kind=CLASSIFIER,
    summary="R3D-18 video ResNet (torchvision design, 1-channel stem); 3x3x3 convolutions",
    args=_ARGS,
    recommended_input=_INPUT,
    pretrained_weights=_kinetics_weights("r3d"),
)
def r3d_18(num_classes: int, width: int, dropout: float) -> VideoResNet:
    return VideoResNet(num_classes, variant="r3d", width=width, dropout=dropout)
