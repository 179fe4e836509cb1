"""Model outputs checked before anyone reads an answer from them: finite, and shaped as the card says.

A damaged or mislabelled model otherwise gives a confident wrong answer: NaN logits turn into a
"present" at p = NaN (argmax of NaN is 0 or anything), a model with the wrong number of classes into
probabilities for classes the card does not name. Checked at the single places that turn logits into
answers (the inference runners and ``lungus evaluate``), so a bad model fails the clip with one line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lungus.errors import LungUSError
from lungus.models.registry import CLASSIFIER


def expected_logits_shape(card: Any, input_shape: Sequence[int]) -> tuple[int, ...]:
    """The logits shape the card promises for an input: (B, K) for a clip classifier fed
    (B, 1, T, H, W), (B, K, H, W) for a segmenter fed (B, 1, H, W)."""
    if card.kind == CLASSIFIER:
        return (int(input_shape[0]), card.num_classes)
    return (int(input_shape[0]), card.num_classes, int(input_shape[-2]), int(input_shape[-1]))


def check_model_output(
    output: Tensor | np.ndarray,
    expected_shape: Sequence[int],
    card: Any,
    path: os.PathLike | str | None,
    what: str = "outputs",
) -> Tensor:
    """``output`` as a tensor, or a LungUSError (naming the model file) when its shape is not
    ``expected_shape`` or it holds NaN or infinite values."""
    tensor = torch.from_numpy(np.asarray(output)) if not isinstance(output, Tensor) else output
    shape, expected = tuple(tensor.shape), tuple(int(n) for n in expected_shape)
    if shape != expected:
        raise LungUSError(
            f"the model's {what} have shape {shape}, not the {expected} its card implies "
            f"({card.num_classes} {card.task} classes: {', '.join(card.class_names)}); "
            "the model does not match its card",
            path,
        )
    if tensor.is_floating_point() or tensor.is_complex():
        bad = int((~torch.isfinite(tensor)).sum())
        if bad:
            raise LungUSError(
                f"the model gave NaN or infinite {what} ({bad} of {tensor.numel()} values); "
                "its weights may be damaged, or it cannot handle this input",
                path,
            )
    return tensor


class CheckedModel(nn.Module):
    """A model whose every forward output is checked against its card (``check_model_output``)."""

    def __init__(self, model: nn.Module, card: Any, path: os.PathLike | str | None) -> None:
        super().__init__()
        self.model, self.card, self.path = model, card, path

    def forward(self, x: Tensor, *args: Any) -> Tensor:
        logits = self.model(x, *args)
        return check_model_output(logits, expected_logits_shape(self.card, x.shape), self.card, self.path, "logits")
