"""Whether the modules' self-tests (run inside Slicer) can run here, without installing anything.

A self-test needs no network: when the engine's packages (or PyTorch, for the tests that
analyse) are missing it says so and skips, rather than installing them with pip.
"""

from __future__ import annotations

import importlib.util

from LungUSBLinesLib.dependencies import missing_requirements


def self_test_skip_reason(with_torch: bool = False) -> str | None:
    """One line saying which packages a self-test lacks and that it is skipped, or None."""
    missing = [item.describe() for item in missing_requirements()]
    if with_torch and importlib.util.find_spec("torch") is None:
        missing.append("torch (install the PyTorch extension)")
    if not missing:
        return None
    return (
        f"Skipped: the engine's Python packages are missing ({'; '.join(missing)}). "
        "Open the module and press a button to install them, then run the test again."
    )
