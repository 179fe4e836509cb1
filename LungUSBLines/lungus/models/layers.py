"""Small building blocks shared by the classifiers and segmenters."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NORMS = ("batch", "group", "none")


def norm_2d(kind: str, channels: int) -> nn.Module:
    """A 2-D normalisation layer by name: ``batch``, ``group`` (8 or fewer groups) or ``none``."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        # GroupNorm needs the channel count to divide evenly; small widths get fewer groups.
        groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; use one of {', '.join(NORMS)}")


class ConvNormAct(nn.Sequential):
    """3x3 (or k x k) convolution, normalisation, ReLU; ``separable`` splits it into depthwise + pointwise."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        norm: str = "batch",
        separable: bool = False,
    ) -> None:
        padding = kernel_size // 2
        bias = norm == "none"
        if separable and in_channels > 1:
            layers: list[nn.Module] = [
                nn.Conv2d(
                    in_channels, in_channels, kernel_size, stride, padding, groups=in_channels, bias=False
                ),
                nn.Conv2d(in_channels, out_channels, 1, bias=bias),
            ]
        else:
            layers = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias)]
        super().__init__(*layers, norm_2d(norm, out_channels), nn.ReLU(inplace=True))


class GatedAttentionPool(nn.Module):
    """Gated attention-MIL pooling over a set of instance embeddings (Ilse et al. 2018, eq. 9).

    Input (B, N, D) embeddings and an optional (B, N) bool mask of the real instances;
    returns the attention weights (B, N), which sum to 1 over the real instances.
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.value = nn.Linear(dim, hidden)
        self.gate = nn.Linear(dim, hidden)
        self.score = nn.Linear(hidden, 1)

    def forward(self, embeddings: Tensor, mask: Tensor | None = None) -> Tensor:
        scores = self.score(
            torch.tanh(self.value(embeddings)) * torch.sigmoid(self.gate(embeddings))
        ).squeeze(-1)
        return masked_softmax(scores, mask)


class ProjectionHead(nn.Module):
    """SimCLR's projection: Linear-BatchNorm-ReLU-Linear from (B, D) embeddings to (B, ``out``)
    unit vectors, where the contrastive loss compares them (Chen et al. 2020). Pretraining
    discards it: the embedding before it transfers better than its output."""

    def __init__(self, dim: int, hidden: int, out: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                                    nn.Linear(hidden, out))

    def forward(self, embeddings: Tensor) -> Tensor:
        return F.normalize(self.layers(embeddings), dim=1)


class AdditiveAttentionPool(nn.Module):
    """Additive (Bahdanau-style) attention weights over a sequence: score_t = v . tanh(W h_t)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.project = nn.Linear(dim, hidden)
        self.score = nn.Linear(hidden, 1, bias=False)

    def forward(self, sequence: Tensor, mask: Tensor | None = None) -> Tensor:
        return masked_softmax(self.score(torch.tanh(self.project(sequence))).squeeze(-1), mask)


def masked_softmax(scores: Tensor, mask: Tensor | None) -> Tensor:
    """Softmax over the last axis, ignoring positions where ``mask`` is False."""
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1)


def masked_mean(values: Tensor, mask: Tensor | None, dim: int) -> Tensor:
    """Mean over ``dim`` of (B, N, ...) values, counting only positions where the (B, N) mask is True."""
    if mask is None:
        return values.mean(dim=dim)
    weights = mask.to(values.dtype)
    while weights.dim() < values.dim():
        weights = weights.unsqueeze(-1)
    return (values * weights).sum(dim=dim) / weights.sum(dim=dim).clamp(min=1.0)


def resize_time(values: Tensor, frames: int) -> Tensor:
    """Stretch (B, T', ...) per-step values to (B, frames, ...) by linear interpolation along time.

    Video ResNets downsample time; this maps their per-step evidence back onto input frames.
    """
    if values.shape[1] == frames:
        return values
    shape = values.shape
    flat = values.reshape(shape[0], shape[1], -1).transpose(1, 2)  # (B, rest, T')
    stretched = F.interpolate(flat, size=frames, mode="linear", align_corners=False)
    return stretched.transpose(1, 2).reshape((shape[0], frames) + tuple(shape[2:]))
