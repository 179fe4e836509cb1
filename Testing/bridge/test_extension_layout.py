"""The Slicer extension layout: CMake lists every file, icons, panels, the one-way import rule.

These read the repository's files; they need neither Slicer nor slicer-core.
"""

from __future__ import annotations

import ast
import json
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULES = ("LungUSBLines", "LungUSTrain", "LungUSInference")
LIB_FOLDERS = (
    "LungUSBLines/LungUSBLinesLib",
    "LungUSTrain/LungUSTrainLib",
    "LungUSInference/LungUSInferenceLib",
)
ENGINE = REPO_ROOT / "LungUSBLines" / "lungus"


# --- a small reader for the CMake the modules use: set(), file(GLOB_RECURSE), ${VAR} ----------


def _cmake_text(path: Path) -> str:
    return re.sub(r"#[^\n]*", "", path.read_text())


def _cmake_variables(cmake_file: Path) -> dict[str, list[str]]:
    """Variables of a module CMakeLists as lists of files relative to its folder."""
    folder = cmake_file.parent
    text = _cmake_text(cmake_file)
    variables: dict[str, list[str]] = {}

    def expand(tokens: list[str]) -> list[str]:
        out = []
        for token in tokens:
            whole = re.fullmatch(r"\$\{(\w+)\}", token)
            if whole and isinstance(variables.get(whole.group(1)), list):
                out.extend(variables[whole.group(1)])
            else:
                out.append(re.sub(r"\$\{(\w+)\}", lambda m: variables[m.group(1)][0], token))
        return out

    for match in re.finditer(r"\b(set|file)\(\s*(.*?)\)", text, flags=re.DOTALL):
        command, arguments = match.group(1), match.group(2).split()
        if command == "set":
            variables[arguments[0]] = expand(arguments[1:])
        elif arguments[0] == "GLOB_RECURSE":
            patterns = [a for a in arguments[2:] if a not in ("RELATIVE", "CONFIGURE_DEPENDS")]
            patterns = [p for p in patterns if not p.startswith("${CMAKE")]
            variables[arguments[1]] = sorted(
                str(p.relative_to(folder))
                for pattern in patterns
                for p in (folder / Path(pattern).parent).rglob(Path(pattern).name)
                if p.is_file() and "__pycache__" not in p.parts
            )
    return variables


def _module_files(module: str, variable: str) -> set[str]:
    return set(_cmake_variables(REPO_ROOT / module / "CMakeLists.txt")[variable])


# --- top level --------------------------------------------------------------------------------


def _extension_setting(name: str) -> str:
    match = re.search(rf'set\({name}\s+"([^"]*)"\)', (REPO_ROOT / "CMakeLists.txt").read_text())
    assert match, f"{name} is not set in CMakeLists.txt"
    return match.group(1)


@pytest.mark.parametrize(
    "name",
    [
        "EXTENSION_HOMEPAGE",
        "EXTENSION_CONTRIBUTORS",
        "EXTENSION_DESCRIPTION",
        "EXTENSION_ICONURL",
        "EXTENSION_SCREENSHOTURLS",
    ],
)
def test_extension_metadata_is_filled_in(name):
    assert _extension_setting(name).strip()


def test_extension_category_and_dependency():
    assert _extension_setting("EXTENSION_CATEGORY") == "Ultrasound"
    assert _extension_setting("EXTENSION_DEPENDS") == "PyTorch"


def test_extension_adds_every_module_and_generates_its_package():
    text = _cmake_text(REPO_ROOT / "CMakeLists.txt")
    assert re.findall(r"add_subdirectory\((\w+)\)", text) == list(MODULES)
    for line in (
        "find_package(Slicer REQUIRED)",
        "include(${Slicer_USE_FILE})",
        "include(${Slicer_EXTENSION_GENERATE_CONFIG})",
        "include(${Slicer_EXTENSION_CPACK})",
    ):
        assert line in text


def test_icon_url_points_at_the_icon_in_the_repository():
    relative = _extension_setting("EXTENSION_ICONURL").split("/main/", 1)[1]
    assert (REPO_ROOT / relative).is_file()


def test_extensions_index_entry_matches_the_schema_and_cmake():
    entry = json.loads((REPO_ROOT / "Resources" / "ExtensionsIndex" / "LungUSBLines.json").read_text())
    allowed = {
        "$schema",
        "category",
        "scm_url",
        "scm_revision",
        "scm_type",
        "build_dependencies",
        "dicom_support_rule",
        "build_subdirectory",
        "enabled",
        "tier",
    }
    assert {"$schema", "category", "scm_url"} <= set(entry) <= allowed
    assert entry["category"] == _extension_setting("EXTENSION_CATEGORY")
    assert entry["build_dependencies"] == _extension_setting("EXTENSION_DEPENDS").split()
    assert entry["scm_url"].removesuffix(".git") == _extension_setting("EXTENSION_HOMEPAGE")


# --- modules ----------------------------------------------------------------------------------


@pytest.mark.parametrize("module", MODULES)
def test_every_python_file_of_a_module_is_in_its_cmake(module):
    folder = REPO_ROOT / module
    on_disk = {
        str(p.relative_to(folder))
        for p in folder.rglob("*.py")
        if "__pycache__" not in p.parts and not p.relative_to(folder).parts[0] == "Testing"
    }
    assert on_disk - _module_files(module, "MODULE_PYTHON_SCRIPTS") == set()


def test_the_engine_is_globbed_into_the_main_module():
    scripts = _module_files("LungUSBLines", "MODULE_PYTHON_SCRIPTS")
    assert "lungus/__init__.py" in scripts and "lungus/io/clip.py" in scripts


@pytest.mark.parametrize("module", MODULES)
def test_every_listed_file_exists(module):
    listed = _module_files(module, "MODULE_PYTHON_SCRIPTS") | _module_files(module, "MODULE_PYTHON_RESOURCES")
    assert {f for f in listed if not (REPO_ROOT / module / f).is_file()} == set()


@pytest.mark.parametrize("module", MODULES)
def test_every_resource_of_a_module_is_in_its_cmake(module):
    folder = REPO_ROOT / module
    on_disk = {str(p.relative_to(folder)) for p in (folder / "Resources").rglob("*") if p.is_file()}
    assert on_disk - _module_files(module, "MODULE_PYTHON_RESOURCES") == set()


@pytest.mark.parametrize("module", MODULES)
def test_module_builds_as_a_scripted_module_with_its_tests(module):
    text = _cmake_text(REPO_ROOT / module / "CMakeLists.txt")
    assert f"set(MODULE_NAME {module})" in text
    assert "slicerMacroBuildScriptedModule(" in text
    assert "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in text
    assert (
        REPO_ROOT / module / "Testing" / "CMakeLists.txt"
    ).read_text().strip() == "add_subdirectory(Python)"
    assert (REPO_ROOT / module / "Testing" / "Python" / "CMakeLists.txt").is_file()


@pytest.mark.parametrize("module", MODULES)
def test_module_defines_module_widget_logic_and_test(module):
    tree = ast.parse((REPO_ROOT / module / f"{module}.py").read_text())
    classes = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
    assert {module, f"{module}Widget", f"{module}Logic", f"{module}Test"} <= classes


# --- panels: every widget the code uses exists, every button does something --------------------


def _ui_widgets(module: str) -> dict[str, str]:
    root = ElementTree.parse(REPO_ROOT / module / "Resources" / "UI" / f"{module}.ui").getroot()
    return {w.get("name"): w.get("class") for w in root.iter("widget")}


def _module_source(module: str) -> str:
    return (REPO_ROOT / module / f"{module}.py").read_text()


@pytest.mark.parametrize("module", MODULES)
def test_widgets_the_code_uses_exist_in_the_ui_file(module):
    used = set(re.findall(r"self\.ui\.(\w+)", _module_source(module)))
    assert used - set(_ui_widgets(module)) == set()


@pytest.mark.parametrize("module", MODULES)
def test_every_button_is_connected(module):
    buttons = [name for name, cls in _ui_widgets(module).items() if cls == "QPushButton"]
    source = _module_source(module)
    unconnected = [
        b for b in buttons if not re.search(rf"self\.ui\.{b}\.(connect\(|clicked\.connect\()", source)
    ]
    assert buttons and unconnected == []


# --- icons ------------------------------------------------------------------------------------

ICONS = ["LungUSBLines.png"] + [f"{m}/Resources/Icons/{m}.png" for m in MODULES]


@pytest.mark.parametrize("icon", ICONS)
def test_icons_are_128_pixel_rgba_pngs_with_a_transparent_background(icon):
    image = Image.open(REPO_ROOT / icon)
    assert image.format == "PNG" and image.size == (128, 128) and image.mode == "RGBA"
    alpha = np.asarray(image)[..., 3]
    assert alpha[0, 0] == 0 and 0.3 < (alpha > 128).mean() < 0.9


def test_icon_script_reproduces_the_committed_icons(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_icon", REPO_ROOT / "Resources" / "scripts" / "make_icon.py"
    )
    make_icon = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_icon)
    drawn = {p.name: np.asarray(Image.open(p)) for p in make_icon.write_icons(tmp_path)}
    for icon in ICONS:
        np.testing.assert_array_equal(
            drawn[Path(icon).name], np.asarray(Image.open(REPO_ROOT / icon)), err_msg=icon
        )


# --- the one-way rule: widgets -> *Lib -> lungus -----------------------------------------------


def _imported_modules(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _top_level(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


def _python_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*.py") if "__pycache__" not in p.parts]


def test_the_engine_imports_no_slicer_qt_vtk_or_bridge():
    forbidden = {
        "slicer",
        "qt",
        "ctk",
        "vtk",
        "vtkmodules",
        "slicer_core",
        "LungUSBLinesLib",
        "LungUSTrainLib",
        "LungUSInferenceLib",
        *MODULES,
    }
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(
            _top_level(_imported_modules(ast.parse(path.read_text()))) & forbidden
        )
        for path in _python_files(ENGINE)
    }
    assert {path: names for path, names in offenders.items() if names} == {}


@pytest.mark.parametrize("lib", LIB_FOLDERS)
def test_bridges_import_no_qt_and_no_module_widgets(lib):
    forbidden = {"qt", "ctk", "slicer.ScriptedLoadableModule", *MODULES}
    offenders = {}
    for path in _python_files(REPO_ROOT / lib):
        tree = ast.parse(path.read_text())
        imported = _imported_modules(tree)
        bad = sorted((_top_level(imported) | imported) & forbidden)
        # The application's singletons: a bridge takes the scene as an argument instead.
        bad += sorted(
            f"slicer.{node.attr}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "slicer"
            and node.attr in ("app", "mrmlScene", "modules")
        )
        if bad:
            offenders[str(path.relative_to(REPO_ROOT))] = bad
    assert offenders == {}


@pytest.mark.parametrize("module", MODULES)
def test_widgets_reach_the_engine_only_through_a_bridge(module):
    tree = ast.parse(_module_source(module))
    # The in-Slicer self-tests may write fixtures with the engine directly.
    code = [node for node in tree.body if not (isinstance(node, ast.ClassDef) and node.name.endswith("Test"))]
    assert "lungus" not in _top_level(_imported_modules(ast.Module(body=code, type_ignores=[])))
