"""The Extensions Index submission passes the index's own checks, offline.

The index runs ExtensionsIndex/scripts/check_description_files.py on every submission: it
clones the repository, validates the entry against its schema, and downloads the icon and
screenshot URLs. Here the same checks run on the local files: the first tests restate them
(so they run from any clone), the last runs the index's own check functions when its source
is beside the repository (../shared/slicer-reference), with the clone replaced by this
repository's files and each URL answered by the file it names here. Not checked offline:
the GitHub repository's '3d-slicer-extension' topic (the index asks GitHub's API).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
ENTRY = REPO_ROOT / "Resources" / "ExtensionsIndex" / "LungUSBLines.json"
CMAKELISTS = REPO_ROOT / "CMakeLists.txt"
# The index's own regular expressions for the two URL settings (check_cmakelists_content).
ICON_URL = re.compile(r'set\s*\(EXTENSION_ICONURL\s*"([^"]+)"[ ]*\)', re.IGNORECASE)
SCREENSHOT_URLS = re.compile(r'set\s*\(EXTENSION_SCREENSHOTURLS\s*"([^"]+)"\)', re.IGNORECASE)
LICENSE_NAMES = ("LICENSE", "LICENCE", "License.txt", "license.txt", "LICENSE.txt", "COPYING", "COPYING.txt")
IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")
SIZE_LIMIT_MB = 100
# The v1.0.2 entry schema's properties (additionalProperties is false) and its required keys.
SCHEMA_PROPERTIES = {
    "$schema": str, "category": str, "scm_url": str, "scm_revision": str, "scm_type": str,
    "build_dependencies": list, "dicom_support_rule": str, "build_subdirectory": str, "enabled": bool, "tier": int,
}
SCHEMA_REQUIRED = ("$schema", "category", "scm_url")


def _reference_folder() -> Path | None:
    for parent in (REPO_ROOT.parent, REPO_ROOT.parent.parent):
        folder = parent / "shared" / "slicer-reference" / "ExtensionsIndex"
        if folder.is_dir():
            return folder
    return None


def _entry() -> dict:
    return json.loads(ENTRY.read_text(encoding="utf-8"))


def _cmake_setting(name: str) -> str:
    match = re.search(rf'set\s*\({name}\s+"([^"]*)"', CMAKELISTS.read_text(encoding="utf-8"))
    assert match, f"CMakeLists.txt sets no {name}"
    return match.group(1)


def _repository_files() -> list[str]:
    """What a clone of this repository holds: tracked files, and new ones not yet ignored."""
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT, capture_output=True, check=True,
    ).stdout.decode()
    return [name for name in listing.split("\0") if name and (REPO_ROOT / name).is_file()]


def _local_file_for_url(url: str) -> Path:
    """The file in this repository that a raw.githubusercontent.com URL of it names."""
    entry = _entry()
    repository = urllib.parse.urlsplit(entry["scm_url"]).path.removesuffix(".git").strip("/")
    prefix = f"https://raw.githubusercontent.com/{repository}/{entry['scm_revision']}/"
    assert url.startswith(prefix), f"{url} is not a file of {repository} at {entry['scm_revision']}"
    return REPO_ROOT / url.removeprefix(prefix)


def _assert_is_image(url: str) -> None:
    path = _local_file_for_url(url)
    assert path.is_file(), f"{url} names {path.relative_to(REPO_ROOT)}, which the repository lacks"
    assert path.read_bytes()[:8].startswith(IMAGE_SIGNATURES), f"{path} is not a PNG, JPEG or GIF"


def test_entry_is_json_with_lf_line_endings():
    content = ENTRY.read_bytes()
    json.loads(content)
    assert b"\r" not in content


def test_entry_has_only_the_schema_properties_with_their_types():
    entry = _entry()
    assert entry["$schema"].split("#")[0].endswith("slicer-extension-catalog-entry-schema-v1.0.2.json")
    assert set(SCHEMA_REQUIRED) <= set(entry)
    assert set(entry) <= set(SCHEMA_PROPERTIES)
    for key, value in entry.items():
        assert isinstance(value, SCHEMA_PROPERTIES[key]), key
    assert 1 <= entry.get("tier", 1) <= 5


def test_entry_validates_against_the_index_schema():
    jsonschema = pytest.importorskip("jsonschema")
    reference = _reference_folder()
    if reference is None:
        pytest.skip("../shared/slicer-reference is not beside this repository")
    schema = json.loads((reference / "schemas" / "slicer-extension-catalog-entry-schema-v1.0.2.json").read_text())
    jsonschema.validate(_entry(), schema)


def test_names_follow_the_index_rules():
    entry = _entry()
    repository_name = urllib.parse.urlsplit(entry["scm_url"]).path.rstrip("/").split("/")[-1].removesuffix(".git")
    assert not ENTRY.stem.lower().startswith("slicer")
    assert repository_name.startswith("Slicer")
    assert urllib.parse.urlsplit(entry["scm_url"]).scheme in ("https", "git")
    project = re.search(r"project\s*\(\s*([^\s\)]+)", CMAKELISTS.read_text(encoding="utf-8"), re.IGNORECASE)
    assert project and project.group(1) == ENTRY.stem


def test_entry_agrees_with_the_cmake_metadata():
    entry = _entry()
    assert entry["category"] == _cmake_setting("EXTENSION_CATEGORY")
    assert entry["build_dependencies"] == _cmake_setting("EXTENSION_DEPENDS").split()


def test_icon_and_screenshot_urls_name_images_in_the_repository():
    cmake = CMAKELISTS.read_text(encoding="utf-8")
    icons, screenshots = ICON_URL.findall(cmake), SCREENSHOT_URLS.findall(cmake)
    assert icons and screenshots, "the index reads EXTENSION_ICONURL and EXTENSION_SCREENSHOTURLS"
    for url in [icons[0].strip(), *screenshots[0].split()]:
        _assert_is_image(url)


def test_license_file_at_the_root_is_the_one_pyproject_declares():
    found = [name for name in LICENSE_NAMES if (REPO_ROOT / name).is_file()]
    assert found, "the index needs a licence file at the repository root"
    text = (REPO_ROOT / found[0]).read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    # an SPDX expression (PEP 639): setuptools stops building the older table form in 2027
    assert 'license = "Apache-2.0"' in (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")


def test_repository_is_under_the_size_limit():
    total = sum((REPO_ROOT / name).stat().st_size for name in _repository_files())
    assert total < SIZE_LIMIT_MB * 1024 * 1024


# --------------------------------------------------------------------------- the index's own checker


@pytest.fixture
def index_checker(tmp_path, monkeypatch):
    """The index's check_description_files module, with its network answered from this repository."""
    reference = _reference_folder()
    if reference is None:
        pytest.skip("../shared/slicer-reference is not beside this repository")
    if sys.version_info < (3, 12):
        pytest.skip("the index's checker is Python 3.12 source; it runs in the Slicer release environments")
    spec = importlib.util.spec_from_file_location("check_description_files", reference / "scripts" /
                                                  "check_description_files.py")
    checker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checker)

    def validate_image_url(url, url_type, extension_name, check_name):
        try:
            _assert_is_image(url)
        except AssertionError as error:
            raise checker.ExtensionCheckError(extension_name, check_name, f"{url_type}: {error}") from None

    monkeypatch.setattr(checker, "validate_image_url", validate_image_url)
    return checker


@pytest.fixture
def clone(tmp_path) -> Path:
    """This repository's files as a clone would hold them."""
    folder = tmp_path / "clone"
    for name in _repository_files():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, folder / name)
    return folder


def test_the_index_checker_passes_the_entry(index_checker, clone, tmp_path, monkeypatch):
    name, metadata = ENTRY.stem, index_checker.parse_json(ENTRY)
    index_checker.check_json_file_format(name, metadata, extension_file_path=str(ENTRY))
    index_checker.check_extension_name(name, metadata)
    index_checker.check_category(name, metadata)
    index_checker.check_git_repository_name(name, metadata)
    index_checker.check_scm_url_syntax(name, metadata)
    index_checker.check_repository_size(name, metadata, cloned_repository_folder=str(clone))
    index_checker.check_cmakelists_content(name, metadata, cloned_repository_folder=str(clone))
    index_checker.check_license_file(name, metadata, cloned_repository_folder=str(clone))
    # Its dependency check, on an index folder holding this entry and the PyTorch one it needs.
    index = tmp_path / "index"
    index.mkdir()
    shutil.copy2(ENTRY, index / ENTRY.name)
    shutil.copy2(_reference_folder() / "PyTorch.json", index / "PyTorch.json")
    index_checker.check_dependencies(str(index))
