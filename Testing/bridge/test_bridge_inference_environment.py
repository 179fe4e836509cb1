"""LungUSInferenceLib: what PyTorch the running Python has."""

from __future__ import annotations

import pytest

from LungUSInferenceLib.environment import TorchStatus, torch_status


@pytest.mark.torch
def test_status_reports_the_installed_torch():
    import torch

    status = torch_status()
    assert status.installed and status.version == torch.__version__


@pytest.mark.torch
def test_status_lists_the_cuda_devices_torch_sees():
    import torch

    expected = tuple(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    assert torch_status().cuda_devices == (expected if torch.cuda.is_available() else ())


def test_cpu_only_status_says_so():
    status = TorchStatus(installed=True, version="2.14.1")
    assert status.best_device == "cpu"
    assert status.describe() == "PyTorch 2.14.1; CPU only (no GPU found)"


def test_gpu_is_preferred_and_named():
    status = TorchStatus(installed=True, version="2.14.1", cuda_devices=("NVIDIA H100",), mps=False)
    assert status.best_device == "cuda"
    assert status.describe() == "PyTorch 2.14.1; GPU: NVIDIA H100"


def test_missing_torch_says_so():
    status = TorchStatus(installed=False)
    assert status.best_device is None and status.describe() == "PyTorch: not installed"
