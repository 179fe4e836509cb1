"""Every bridge module imports in a Python without torch, as in Slicer before the PyTorch
extension has installed it: the modules load, list what is missing and offer to install it.

This is also what keeps the Slicer-release environments honest: there torch is absent, and a
bridge test skips only when it declares that it needs torch (see Testing/conftest.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LIBRARIES = {"LungUSBLines": "LungUSBLinesLib", "LungUSTrain": "LungUSTrainLib", "LungUSInference": "LungUSInferenceLib"}


def _bridge_modules() -> list[str]:
    names = []
    for folder, package in LIBRARIES.items():
        for path in sorted((REPO_ROOT / folder / package).glob("*.py")):
            names.append(package if path.stem == "__init__" else f"{package}.{path.stem}")
    return names


def test_every_bridge_module_imports_without_torch():
    modules = _bridge_modules()
    # sys.modules["torch"] = None makes any `import torch` fail, exactly as where it is not installed.
    code = "import importlib, sys\nsys.modules['torch'] = sys.modules['torchvision'] = None\n" + "".join(
        f"importlib.import_module({name!r})\n" for name in modules
    )
    path = [str(REPO_ROOT / folder) for folder in LIBRARIES]
    result = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path[:0] = {path!r}\n{code}"],
        capture_output=True, text=True, timeout=300, cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(modules) > 10
