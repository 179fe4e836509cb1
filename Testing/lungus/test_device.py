"""lungus.device: the device names, defined once, checked before torch is imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lungus.device import DEVICE_NAMES, check_device_name, is_device_name, resolve_device
from lungus.errors import LungUSError


@pytest.mark.parametrize("name", [*DEVICE_NAMES, "cuda:0", "cuda:3"])
def test_every_device_name_and_cuda_n_is_accepted(name):
    assert is_device_name(name) and check_device_name(name) == name


@pytest.mark.parametrize("name", ["gpu", "tpu", "cuda:", "cuda:x", "CPU", ""])
def test_anything_else_is_refused_naming_the_choices(name):
    with pytest.raises(LungUSError, match=r"device must be one of auto, cpu, cuda, cuda:N or mps, got"):
        check_device_name(name)


@pytest.mark.torch
def test_resolving_an_unknown_name_gives_the_same_message_as_checking_it():
    with pytest.raises(LungUSError) as checked:
        check_device_name("cuda:x")
    with pytest.raises(LungUSError) as resolved:
        resolve_device("cuda:x")
    assert str(resolved.value) == str(checked.value)


def test_the_shared_definitions_import_without_torch():
    # Slicer's Python before the PyTorch extension installs torch imports these (the panels, the
    # requests' checks): the names must not pull torch in.
    code = (
        "import sys\nsys.modules['torch'] = sys.modules['torchvision'] = None\n"
        "import lungus.device, lungus.errors, lungus.explanations, lungus.progress, lungus.data.labels.tasks\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
