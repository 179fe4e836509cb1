"""What the engine needs in Slicer's Python, kept in step with pyproject.toml."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from LungUSBLinesLib import dependencies

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the venv runs 3.11+
    tomllib = pytest.importorskip("tomli")

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_requirements_match_pyproject_dependencies():
    declared = set(tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"])
    ours = set(dependencies.ENGINE_REQUIREMENTS.values()) | set(dependencies.TORCH_REQUIREMENTS.values())
    assert ours == declared


def test_nothing_is_missing_in_the_development_venv():
    assert dependencies.missing_requirements() == []


def test_absent_module_is_reported_missing():
    missing = dependencies.missing_requirements({"lungus_no_such_module": "lungus-no-such-module>=1"})
    assert [(m.import_name, m.installed) for m in missing] == [("lungus_no_such_module", None)]


def test_too_old_version_is_reported_with_the_version_found():
    import numpy

    missing = dependencies.missing_requirements({"numpy": "numpy>=999"})
    assert [m.installed for m in missing] == [numpy.__version__]
    assert missing[0].describe() == f"numpy>=999 ({numpy.__version__} installed)"


def test_engine_version_is_the_package_version():
    import lungus

    assert dependencies.engine_version() == lungus.__version__
