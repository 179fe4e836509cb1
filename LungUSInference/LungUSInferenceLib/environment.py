"""Where inference can run: is PyTorch there, which version, which GPUs."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class TorchStatus:
    installed: bool
    version: str | None = None
    cuda_devices: tuple[str, ...] = ()
    mps: bool = False  # Apple-silicon GPU

    @property
    def best_device(self) -> str | None:
        """The device inference would pick on "auto": cuda, then mps, then cpu."""
        if not self.installed:
            return None
        return "cuda" if self.cuda_devices else "mps" if self.mps else "cpu"

    def describe(self) -> str:
        if not self.installed:
            return "PyTorch: not installed"
        if self.cuda_devices:
            where = f"GPU: {', '.join(self.cuda_devices)}"
        elif self.mps:
            where = "GPU: Apple silicon (MPS)"
        else:
            where = "CPU only (no GPU found)"
        return f"PyTorch {self.version}; {where}"


def torch_status() -> TorchStatus:
    """Inspect the running Python's torch without installing anything."""
    if importlib.util.find_spec("torch") is None:
        return TorchStatus(installed=False)
    import torch

    cuda_devices: tuple[str, ...] = ()
    if torch.cuda.is_available():
        cuda_devices = tuple(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    mps_backend = getattr(torch.backends, "mps", None)
    mps = bool(mps_backend is not None and mps_backend.is_available())
    return TorchStatus(installed=True, version=torch.__version__, cuda_devices=cuda_devices, mps=mps)
