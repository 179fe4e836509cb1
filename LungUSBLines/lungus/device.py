"""Choosing the torch device: the device names, defined once, and one rule for training,
inference and benchmarks.

The names and their check are torch-free (torch is imported only to resolve a name), so the
training configuration and the Slicer panels check a device before PyTorch is installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lungus.errors import LungUSError

if TYPE_CHECKING:
    import torch

#: The device names: ``auto`` picks CUDA, then Apple MPS, then the CPU; ``cuda:N`` is accepted too.
DEVICE_NAMES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")
DEFAULT_DEVICE = "auto"
#: The --device help of every command that runs a model.
DEVICE_HELP = "auto | cpu | cuda | cuda:N | mps (default auto)"


def is_device_name(name: str) -> bool:
    """Whether ``name`` is one of DEVICE_NAMES or ``cuda:N``; whether this machine has it is
    for :func:`resolve_device` to say."""
    return name in DEVICE_NAMES or (name.startswith("cuda:") and name[len("cuda:"):].isdigit())


def device_problem(name: str) -> str | None:
    """The one-line problem with a device name (for a LungUSError), or None when it is one."""
    return None if is_device_name(name) else f"device must be one of auto, cpu, cuda, cuda:N or mps, got {name!r}"


def check_device_name(name: str) -> str:
    """``name`` if it is a device name, else LungUSError (before anything starts)."""
    problem = device_problem(name)
    if problem is not None:
        raise LungUSError(problem)
    return name


def resolve_device(name: str = DEFAULT_DEVICE, local_rank: int = 0) -> torch.device:
    """``auto`` picks CUDA (this process's local rank), then Apple MPS, then the CPU."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    check_device_name(name)
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise LungUSError(f"device {name!r} asked for, but this torch build sees no CUDA GPU; use --device cpu")
        return torch.device(name) if ":" in name else torch.device("cuda", local_rank % torch.cuda.device_count())
    if name == "mps":
        if not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
            raise LungUSError("device 'mps' asked for, but Apple MPS is not available here; use --device cpu")
        return torch.device("mps")
    return torch.device("cpu")
