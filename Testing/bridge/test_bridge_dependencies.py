"""What the engine needs in Slicer's Python, kept in step with pyproject.toml, and what the
module may install: never a package Slicer bundles.

These run in the development venv (Python 3.11) and in each Slicer-release environment
(Python 3.12 with that release's numpy, pydicom and pillow: `make test-slicer-releases`).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from LungUSBLinesLib import dependencies

REPO_ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = REPO_ROOT / "pyproject.toml"
MAKEFILE = REPO_ROOT / "Makefile"
BUNDLED_ENGINE_PACKAGES = {"numpy": "numpy", "pydicom": "pydicom", "PIL": "pillow"}


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


# --------------------------------------------------------------------------- supported releases


def test_requires_python_claims_exactly_what_is_tested():
    # Slicer 5.10 and 5.12 run 3.12 (the release environments); the torch engine is tested on 3.11.
    requires = SpecifierSet(tomllib.loads(PYPROJECT.read_text())["project"]["requires-python"])
    assert {"3.11", "3.12"} <= set(requires.filter(["3.9", "3.10", "3.11", "3.12"]))
    assert not set(requires.filter(["3.9", "3.10"]))


def test_every_supported_release_bundles_what_the_engine_needs():
    for release, bundled in dependencies.SLICER_RELEASES.items():
        for import_name, distribution in BUNDLED_ENGINE_PACKAGES.items():
            requirement = dependencies.ENGINE_REQUIREMENTS[import_name]
            assert dependencies.first_release_bundling(requirement) is not None, requirement
            assert SpecifierSet(str(requirement).removeprefix(distribution)).contains(bundled[distribution]), (
                f"Slicer {release} bundles {distribution} {bundled[distribution]}, outside {requirement}"
            )


def test_release_environments_pin_what_each_release_bundles():
    makefile = MAKEFILE.read_text()
    releases = re.search(r"^SLICER_RELEASES\s*:=\s*(.+)$", makefile, re.MULTILINE).group(1).split()
    assert releases == list(dependencies.SLICER_RELEASES)
    for release, bundled in dependencies.SLICER_RELEASES.items():
        pins = re.search(rf"^BUNDLED_{re.escape(release)}\s*:=\s*(.+)$", makefile, re.MULTILINE).group(1).split()
        assert pins == [f"{name}=={version}" for name, version in bundled.items()]


def test_this_release_environment_has_the_bundled_versions():
    release = os.environ.get("LUNGUS_SLICER_RELEASE")
    if not release:
        pytest.skip("not a Slicer release environment (make test-slicer-releases sets LUNGUS_SLICER_RELEASE)")
    assert sys.version_info[:2] == (3, 12)
    for name, version in dependencies.SLICER_RELEASES[release].items():
        assert importlib.metadata.version(name) == version
    # torch stays out, so a bridge test that reaches for it without saying so fails here.
    assert importlib.util.find_spec("torch") is None


# --------------------------------------------------------------------------- what may be installed


def test_a_bundled_package_that_falls_short_is_reported_not_installed():
    import pydicom

    plan = dependencies.install_plan({"pydicom": "pydicom>=999", "lungus_no_such_module": "lungus-no-such-module>=1"})
    assert [item.import_name for item in plan.install] == ["lungus_no_such_module"]
    assert [item.import_name for item in plan.bundled_shortfalls] == ["pydicom"]
    assert plan.refusal() == (
        f"Slicer's bundled pydicom {pydicom.__version__} is older than 999, which LungUS needs: "
        "no supported Slicer release bundles it."
    )


def test_the_refusal_names_the_first_release_that_bundles_enough():
    too_old = dependencies.MissingRequirement("pydicom", "pydicom>=2.4", "2.3.0")
    assert dependencies.bundled_shortfall_message(too_old) == (
        "Slicer's bundled pydicom 2.3.0 is older than 2.4, which LungUS needs: use Slicer 5.10 or later."
    )
    assert dependencies.first_release_bundling("pydicom>=3.0") == "5.12"
    assert dependencies.first_release_bundling("numpy>=999") is None


def test_a_bundled_package_too_new_is_named_with_the_whole_range():
    too_new = dependencies.MissingRequirement("numpy", "numpy>=1.24,<2", "2.0.2")
    assert dependencies.bundled_shortfall_message(too_new) == (
        "Slicer's bundled numpy 2.0.2 does not meet <2,>=1.24, which LungUS needs: "
        "no supported Slicer release bundles it."
    )


def test_nothing_bundled_is_ever_in_the_install_list():
    plan = dependencies.install_plan({name: f"{dist}>=999" for name, dist in BUNDLED_ENGINE_PACKAGES.items()})
    assert plan.install == ()
    assert {item.distribution for item in plan.bundled_shortfalls} == set(BUNDLED_ENGINE_PACKAGES.values())


def test_pip_gets_the_constraints_file_then_only_what_is_missing(tmp_path):
    plan = dependencies.install_plan({"lungus_no_such_module": "lungus-no-such-module>=1"})
    constraints = tmp_path / "c.txt"
    assert plan.pip_arguments(constraints) == ["-c", str(constraints), "lungus-no-such-module>=1"]
    assert plan.refusal() is None and not plan.satisfied


def test_constraints_pin_each_installed_bundled_package(tmp_path):
    written = dependencies.write_bundled_constraints(tmp_path / "constraints.txt").read_text().splitlines()
    for distribution in BUNDLED_ENGINE_PACKAGES.values():
        assert f"{distribution}=={importlib.metadata.version(distribution)}" in written
    assert all(line.split("==")[0] in dependencies.SLICER_BUNDLED for line in written)


def test_pip_refuses_to_change_a_bundled_package_under_the_constraints(tmp_path, offline_pip):
    import numpy

    constraints = str(dependencies.write_bundled_constraints(tmp_path / "constraints.txt"))
    refused = offline_pip("--dry-run", "-c", constraints, f"numpy!={numpy.__version__}")
    assert refused.returncode != 0 and "numpy" in refused.stdout + refused.stderr
    accepted = offline_pip("--dry-run", "-c", constraints, "numpy")
    assert accepted.returncode == 0, accepted.stderr


def test_the_command_line_writes_constraints_and_prints_pip_arguments(tmp_path, capsys):
    constraints = tmp_path / "constraints.txt"
    assert dependencies.main(["--constraints", str(constraints)]) == 0
    # Everything is installed here, so pip is given only the constraints.
    assert capsys.readouterr().out.split() == ["-c", str(constraints)]
    assert constraints.read_text() == dependencies.bundled_constraints()


# --------------------------------------------------------------------------- torch


def test_torch_floors_are_passed_to_the_pytorch_extension_as_specifiers():
    assert dependencies.torch_version_specifiers() == (">=2.1", ">=0.16")


def test_an_updated_module_already_imported_needs_a_restart():
    import numpy  # noqa: F401 - imported, so an update would need a restart

    updated = [
        dependencies.MissingRequirement("numpy", "numpy>=999", "1.0"),
        dependencies.MissingRequirement("lungus_no_such_module", "lungus-no-such-module>=1", None),
    ]
    assert dependencies.stale_imports(updated) == "numpy"
