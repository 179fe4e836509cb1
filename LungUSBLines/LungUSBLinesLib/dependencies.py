"""Which Python packages the engine needs that the running Python lacks.

Slicer's Python starts without most of them. The module widgets show this list,
ask the user, and install with pip (torch through the PyTorch extension); this file
only decides what is missing, so it runs and is tested anywhere.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass

from packaging.requirements import Requirement
from packaging.version import InvalidVersion, Version

# Import name -> pip requirement. Keep in step with pyproject.toml [project].dependencies
# (a test checks); torch and torchvision are left to Slicer's PyTorch extension.
ENGINE_REQUIREMENTS: dict[str, str] = {
    "numpy": "numpy>=1.24",
    "cv2": "opencv-python-headless>=4.8",
    "pydicom": "pydicom>=3.0",
    "pylibjpeg": "pylibjpeg>=2.0",
    "libjpeg": "pylibjpeg-libjpeg>=2.1",
    "PIL": "pillow>=10",
    "nrrd": "pynrrd>=1.0",
    "skimage": "scikit-image>=0.21",
    "sklearn": "scikit-learn>=1.3",
    "scipy": "scipy>=1.10",
    "tqdm": "tqdm>=4.60",
    "matplotlib": "matplotlib>=3.7",
    "yaml": "pyyaml>=6",
}
TORCH_REQUIREMENTS: dict[str, str] = {"torch": "torch>=2.1", "torchvision": "torchvision>=0.16"}


@dataclass(frozen=True)
class MissingRequirement:
    """A requirement not met: ``installed`` is the version found, or None if absent."""

    import_name: str
    requirement: str
    installed: str | None

    def describe(self) -> str:
        found = "not installed" if self.installed is None else f"{self.installed} installed"
        return f"{self.requirement} ({found})"


def _installed_versions(import_name: str, providers: dict[str, list[str]]) -> list[str]:
    # A module may come from another distribution than the one we would install
    # (cv2 from opencv-python rather than -headless): ask which ones provide it.
    versions = []
    for name in providers.get(import_name, []):
        try:
            versions.append(importlib.metadata.version(name))
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def _satisfies(version: str, requirement: Requirement) -> bool:
    try:
        return requirement.specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return True  # a local build with an odd version string: trust it


def missing_requirements(requirements: dict[str, str] | None = None) -> list[MissingRequirement]:
    """The requirements (import name -> pip requirement) that are absent or too old.

    Defaults to ENGINE_REQUIREMENTS. A module importable without package metadata
    counts as present: there is no version to check.
    """
    requirements = ENGINE_REQUIREMENTS if requirements is None else requirements
    providers = importlib.metadata.packages_distributions()
    missing = []
    for import_name, text in requirements.items():
        if importlib.util.find_spec(import_name) is None:
            missing.append(MissingRequirement(import_name, text, None))
            continue
        versions = _installed_versions(import_name, providers)
        requirement = Requirement(text)
        if versions and not any(_satisfies(v, requirement) for v in versions):
            missing.append(MissingRequirement(import_name, text, versions[0]))
    return missing


def engine_version() -> str:
    """Version of the `lungus` engine this extension carries."""
    import lungus

    return lungus.__version__
