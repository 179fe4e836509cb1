"""Input normalisation: the one convention every lungus model is trained and run with.

Frames are uint8 grayscale. A model sees ``(frames / 255 - mean) / std`` as float32, with
``mean`` and ``std`` stored in the model card (``preprocessing.normalisation``), so a model
file always carries the numbers it was trained with.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

# ImageNet's RGB statistics averaged over channels: the default, and right for ImageNet backbones.
IMAGENET_GRAY = {"mean": 0.449, "std": 0.226}
# Kinetics-400 statistics (torchvision's video models) averaged over channels.
KINETICS_GRAY = {"mean": 0.401, "std": 0.222}


def check_normalisation(normalisation: Any) -> dict[str, float]:
    """A validated {"mean": float, "std": float} (std > 0)."""
    try:
        mean, std = float(normalisation["mean"]), float(normalisation["std"])
    except (TypeError, KeyError, ValueError):
        raise ValueError(
            f"normalisation must be a mapping with numeric 'mean' and 'std', got {normalisation!r}"
        ) from None
    if not std > 0:
        raise ValueError(f"normalisation std must be > 0, got {std}")
    return {"mean": mean, "std": std}


def normalise_frames(frames: np.ndarray | torch.Tensor, normalisation: dict[str, float]) -> torch.Tensor:
    """uint8 frames (any shape) -> float32 tensor ``(frames / 255 - mean) / std``."""
    norm = check_normalisation(normalisation)
    tensor = torch.as_tensor(frames)
    if tensor.dtype != torch.uint8:
        raise ValueError(f"normalise_frames expects uint8 frames, got {tensor.dtype}")
    return (tensor.to(torch.float32) / 255.0 - norm["mean"]) / norm["std"]
