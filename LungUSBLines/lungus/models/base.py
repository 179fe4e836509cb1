"""What every lungus classifier and segmenter promises beyond ``forward``."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def check_video_input(x: Tensor) -> None:
    if x.dim() != 5 or x.shape[1] != 1:
        raise ValueError(
            "video classifiers take a (B, 1, T, H, W) float tensor of normalised grayscale frames; "
            "add the channel axis with x.unsqueeze(1)"
        )


def check_image_input(x: Tensor) -> None:
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(
            "segmenters take a (B, 1, H, W) float tensor of normalised grayscale frames; "
            "add the channel axis with x.unsqueeze(1)"
        )


class VideoClassifier(nn.Module):
    """A clip classifier: (B, 1, T, H, W) normalised grayscale -> logits (B, K).

    ``forward(x, frame_mask=None)`` returns only the logits (this is what TorchScript and
    ONNX export). ``frame_mask`` is an optional (B, T) bool tensor marking real frames when
    clips of different length are padded into one batch; models that cannot use it reject it.

    ``explain(x)`` returns a dict of tensors for explanations:

    - ``logits`` (B, K): the same as ``forward``;
    - ``frame_logits`` (B, T, K): per-frame class evidence, on the input's frames;
    - ``frame_weights`` (B, T): how much each frame counted in the clip decision (sums to 1);
    - ``class_maps`` (B, T, K, h, w): class activation maps, where the head is linear on
      pooled features so the maps are exact (CAM); resize them to the frame size to overlay;
    - ``spatial_attention`` (B, T, h, w): where an attention model looked in each frame.

    ``gradcam_layer()`` names the module whose output Grad-CAM uses; ``gradcam_layout`` says
    whether that output is ``"frames"`` ((B*T, C, h, w)) or ``"video"`` ((B, C, T', h, w)).
    """

    # (No class-level annotations here: TorchScript cannot resolve postponed ones.)
    gradcam_layout = "frames"

    def explain(self, x: Tensor, frame_mask: Tensor | None = None) -> dict[str, Tensor]:
        raise NotImplementedError

    def gradcam_layer(self) -> nn.Module:
        raise NotImplementedError


class Segmenter(nn.Module):
    """A frame segmenter: (B, 1, H, W) normalised grayscale -> logits (B, K, H, W), K = 6 by default
    (the class ids of docs/architecture.md#segmentation-classes: background, pleural line, A-line, B-line, confluent B-line, rib shadow)."""


def frame_mask_or_none(frame_mask: Tensor | None, batch: int, frames: int) -> Tensor | None:
    """Validate an optional (B, T) bool mask of the real frames (padding after them)."""
    if frame_mask is None:
        return None
    if (
        frame_mask.dim() != 2
        or frame_mask.shape[0] != batch
        or frame_mask.shape[1] != frames
        or frame_mask.dtype != torch.bool
    ):
        raise ValueError(f"frame_mask must be a ({batch}, {frames}) bool tensor marking the real frames")
    if not bool(frame_mask.any(dim=1).all()):
        raise ValueError("every clip in the batch needs at least one real frame in frame_mask")
    lengths = frame_mask.sum(dim=1, keepdim=True)
    if not bool((frame_mask == (torch.arange(frames, device=frame_mask.device)[None, :] < lengths)).all()):
        raise ValueError("frame_mask must mark each clip's real frames first and its padding after them")
    return frame_mask
