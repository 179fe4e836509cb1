"""Grad-CAM for any lungus video classifier (Selvaraju et al. 2017).

Models whose head is linear on pooled features also give exact class maps from
``model.explain(x)["class_maps"]``; Grad-CAM works for every model, including the
attention and LSTM ones, through the layer each model names in ``gradcam_layer()``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lungus.models.base import VideoClassifier


def grad_cam(
    model: VideoClassifier,
    x: Tensor,
    target_class: int | Tensor | None = None,
    layer: torch.nn.Module | None = None,
) -> tuple[Tensor, Tensor]:
    """Grad-CAM maps (B, T, H, W) in [0, 1] (per-clip max = 1) for ``target_class`` (default: the
    predicted class), and the logits (B, K). The model is run in eval mode and left as it was.

    ``layer`` defaults to ``model.gradcam_layer()`` (for frame models the stage at 1/16 of the
    frame size); any layer with the same output layout can be given instead.
    """
    layer = model.gradcam_layer() if layer is None else layer
    captured: dict[str, Tensor] = {}

    def keep_output(_module: torch.nn.Module, _inputs: object, output: Tensor) -> None:
        captured["activation"] = output

    was_training = model.training
    handle = layer.register_forward_hook(keep_output)
    try:
        model.eval()
        with torch.enable_grad():
            logits = model(x.detach())
            if target_class is None:
                target = logits.argmax(dim=1)
            else:
                target = torch.as_tensor(target_class, device=logits.device).long().expand(logits.shape[0])
            score = logits.gather(1, target[:, None]).sum()
            activation = captured["activation"]
            (gradient,) = torch.autograd.grad(score, activation)
    finally:
        handle.remove()
        model.train(was_training)
    batch, _, frames, height, width = x.shape
    activation, gradient = activation.detach(), gradient.detach()
    if model.gradcam_layout == "video":  # (B, C, T', h, w)
        weights = gradient.mean(dim=(2, 3, 4), keepdim=True)
        cam = F.relu((weights * activation).sum(dim=1, keepdim=True))
        cam = F.interpolate(cam, size=(frames, height, width), mode="trilinear", align_corners=False)[:, 0]
    else:  # (B*T, C, h, w)
        weights = gradient.mean(dim=(2, 3), keepdim=True)
        cam = F.relu((weights * activation).sum(dim=1, keepdim=True))
        cam = F.interpolate(cam, size=(height, width), mode="bilinear", align_corners=False)
        cam = cam.reshape(batch, frames, height, width)
    peak = cam.flatten(1).amax(dim=1).clamp(min=1e-12)
    return cam / peak[:, None, None, None], logits.detach()
