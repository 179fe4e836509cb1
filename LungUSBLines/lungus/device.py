"""Choosing the torch device: one rule for training, inference and benchmarks."""

from __future__ import annotations

import torch

from lungus.errors import LungUSError


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` picks CUDA (this process's local rank), then Apple MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise LungUSError(f"device {name!r} asked for, but this torch build sees no CUDA GPU; use --device cpu")
        return torch.device(name) if ":" in name else torch.device("cuda", local_rank % torch.cuda.device_count())
    if name == "mps":
        if not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
            raise LungUSError("device 'mps' asked for, but Apple MPS is not available here; use --device cpu")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise LungUSError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps")
