"""Which Python packages the engine needs that the running Python lacks, and how to add them.

Slicer's Python starts without most of them. The module widgets show this list,
ask the user, and install with pip (torch through the PyTorch extension); this file
decides what is missing and what pip may be asked to do, so it runs and is tested anywhere.

Slicer bundles some of the engine's packages (numpy, pydicom, pillow) and its own modules
import them, some at startup: an extension must never upgrade or downgrade them. So a
bundled package that falls short is reported, never installed, and pip runs under a
constraints file that pins every bundled package at its installed version, so that nothing
it installs can pull in another numpy either.

``python -m LungUSBLinesLib.dependencies --constraints FILE`` writes those constraints and
prints the pip arguments, one per line: the Slicer-release test environments install through it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from lungus.atomic import atomic_path

# Import name -> pip requirement. Keep in step with pyproject.toml [project].dependencies
# (a test checks); torch and torchvision are left to Slicer's PyTorch extension.
# For the packages Slicer bundles, each floor admits what the oldest supported release bundles.
ENGINE_REQUIREMENTS: dict[str, str] = {
    "numpy": "numpy>=1.24",
    "cv2": "opencv-python-headless>=4.8",
    "pydicom": "pydicom>=2.4",
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

#: What each supported Slicer release bundles of the engine's packages (read from Slicer's
#: CMake files), oldest first. The Makefile's release test environments pin the same (a test checks).
SLICER_RELEASES: dict[str, dict[str, str]] = {
    "5.10": {"numpy": "2.0.2", "pydicom": "2.4.4", "pillow": "11.2.1"},
    "5.12": {"numpy": "2.4.6", "pydicom": "3.0.2", "pillow": "12.2.0"},
}

#: Distributions Slicer bundles: never installed, upgraded or downgraded by this extension,
#: and pinned at their installed version whenever pip runs. Besides the engine's three, the
#: ones a dependency could pull in (scikit-image and matplotlib need packaging; 5.12 bundles
#: SimpleITK, highdicom and pyjpegls, which share pydicom and numpy).
SLICER_BUNDLED: tuple[str, ...] = (
    "numpy",
    "pydicom",
    "pillow",
    "packaging",
    "requests",
    "SimpleITK",
    "highdicom",
    "pyjpegls",
)


@dataclass(frozen=True)
class MissingRequirement:
    """A requirement not met: ``installed`` is the version found, or None if absent."""

    import_name: str
    requirement: str
    installed: str | None

    def describe(self) -> str:
        found = "not installed" if self.installed is None else f"{self.installed} installed"
        return f"{self.requirement} ({found})"

    @property
    def distribution(self) -> str:
        return Requirement(self.requirement).name

    @property
    def bundled_with_slicer(self) -> bool:
        return is_bundled_with_slicer(self.distribution)


def is_bundled_with_slicer(distribution: str) -> bool:
    return canonicalize_name(distribution) in {canonicalize_name(name) for name in SLICER_BUNDLED}


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


def torch_version_specifiers() -> tuple[str, str]:
    """The (torch, torchvision) version specifiers, e.g. (">=2.1", ">=0.16"), as the PyTorch
    extension's ``installTorch(torchVersionRequirement=..., torchvisionVersionRequirement=...)`` takes them."""
    torch, torchvision = (Requirement(TORCH_REQUIREMENTS[name]) for name in ("torch", "torchvision"))
    return str(torch.specifier), str(torchvision.specifier)


def stale_imports(updated: Iterable[MissingRequirement]) -> str:
    """Which of ``updated`` (just installed over a version too old) this Python has already
    imported, comma-separated: the old version stays in memory until the application restarts."""
    return ", ".join(
        item.distribution for item in updated if item.installed is not None and item.import_name in sys.modules
    )


def first_release_bundling(requirement: str) -> str | None:
    """The oldest supported Slicer release whose bundled version meets ``requirement``."""
    parsed = Requirement(requirement)
    for release, bundled in SLICER_RELEASES.items():
        versions = {canonicalize_name(name): version for name, version in bundled.items()}
        version = versions.get(canonicalize_name(parsed.name))
        if version is not None and _satisfies(version, parsed):
            return release
    return None


def bundled_shortfall_message(item: MissingRequirement) -> str:
    """One line for a bundled package that falls short, saying which Slicer to use instead."""
    release = first_release_bundling(item.requirement)
    advice = f"use Slicer {release} or later" if release else "no supported Slicer release bundles it"
    needed = Requirement(item.requirement)
    if item.installed is None:
        return f"Slicer's Python lacks {needed.name}, which LungUS needs ({needed}): {advice}."
    specifiers = list(needed.specifier)
    if len(specifiers) == 1 and specifiers[0].operator == ">=":
        shortfall = f"is older than {specifiers[0].version}"
    else:
        shortfall = f"does not meet {needed.specifier}"
    return f"Slicer's bundled {needed.name} {item.installed} {shortfall}, which LungUS needs: {advice}."


@dataclass(frozen=True)
class InstallPlan:
    """What pip may install (``install``) and the Slicer-bundled packages that fall short
    (``bundled_shortfalls``), which are never installed: the user needs another Slicer."""

    install: tuple[MissingRequirement, ...]
    bundled_shortfalls: tuple[MissingRequirement, ...]

    @property
    def satisfied(self) -> bool:
        return not self.install and not self.bundled_shortfalls

    def refusal(self) -> str | None:
        """Why nothing can be installed (a bundled package falls short), or None."""
        if not self.bundled_shortfalls:
            return None
        return "\n".join(bundled_shortfall_message(item) for item in self.bundled_shortfalls)

    def pip_arguments(self, constraints: Path) -> list[str]:
        """Arguments for ``pip install`` (and ``slicer.util.pip_install``, which passes a list
        through unchanged on 5.10 and 5.12): the constraints file first, then the requirements."""
        return ["-c", str(constraints), *(item.requirement for item in self.install)]


def install_plan(requirements: dict[str, str] | None = None) -> InstallPlan:
    """Split what is missing into what pip may install and what only a newer Slicer can fix."""
    missing = missing_requirements(requirements)
    return InstallPlan(
        install=tuple(item for item in missing if not item.bundled_with_slicer),
        bundled_shortfalls=tuple(item for item in missing if item.bundled_with_slicer),
    )


def bundled_constraints() -> str:
    """pip constraints pinning each Slicer-bundled distribution installed here at its version."""
    lines = []
    for name in SLICER_BUNDLED:
        try:
            lines.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return "".join(f"{line}\n" for line in lines)


def write_bundled_constraints(path: Path) -> Path:
    """Write :func:`bundled_constraints` to ``path``, for ``pip install -c``."""
    with atomic_path(path) as temporary:
        temporary.write_text(bundled_constraints(), encoding="utf-8")
    return Path(path)


def engine_version() -> str:
    """Version of the `lungus` engine this extension carries."""
    import lungus

    return lungus.__version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m LungUSBLinesLib.dependencies",
        description="Write the constraints that pin Slicer's bundled packages and print the pip install "
        "arguments for what the engine lacks (exit 2 if a bundled package falls short).",
    )
    parser.add_argument("--constraints", type=Path, required=True, help="constraints file to write")
    options = parser.parse_args(argv)
    plan = install_plan()
    if plan.refusal():
        print(plan.refusal(), file=sys.stderr)
        return 2
    write_bundled_constraints(options.constraints)
    print("\n".join(plan.pip_arguments(options.constraints)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
