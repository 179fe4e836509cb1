"""The module files read as a fresh Slicer would run them: before the engine's packages exist.

Desktop Slicer cannot run here, so these read the three module files (ast) and the .ui files
(XML) instead:

- every button and selector slot asks for the engine's packages (``ensurePythonRequirements``)
  before it reaches code that needs them, and opening a module (module level, ``setup``,
  ``enter``) never needs them. "Needs them" is followed through the widget's own methods, its
  logic's methods and the bridge functions they import, down to the modules imported; whether a
  module imports without the packages Slicer lacks is checked for real, in a subprocess that
  blocks those packages;
- self-tests install nothing and restart nothing (no network, no pip);
- every MRML widget in a .ui gets the scene from the module's top-level widget;
- each module keeps its panel choices in a @parameterNodeWrapper class with the template's
  lifecycle, and every widget bound to a field (by SlicerParameterName, or by hand through
  ParameterNodePanelMixin) is of a class that can show that field's type.

What cannot be checked here is whether connectGui and the wrapper behave in the running
application; LungUSBLinesTest.test_ParameterNodeKeepsThePanelChoices checks that inside Slicer.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULE_NAMES = ("LungUSBLines", "LungUSTrain", "LungUSInference")
MODULE_FILES = {name: REPO_ROOT / name / f"{name}.py" for name in MODULE_NAMES}
REQUIREMENTS_CHECK = "ensurePythonRequirements"
# The widgets' shared parameter-node lifecycle (LungUSBLines.py): its methods run as the widget's.
PANEL_MIXIN = ("LungUSBLines", "ParameterNodePanelMixin")
# Slicer's own modules and Python packages every supported release bundles.
ALWAYS_THERE = {"slicer", "qt", "ctk", "vtk", "numpy", "packaging", "PythonQt", "__future__"}
# Calls a self-test must not make: each installs packages (network) or restarts Slicer.
INSTALLING_CALLS = {
    REQUIREMENTS_CHECK,
    "ensureTorch",
    "pip_install",
    "pip_uninstall",
    "installTorch",
    "restart",
}


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _source_file(module: str) -> Path | None:
    """The repository file of ``module`` (a module file, a bridge module or an engine module)."""
    if module in MODULE_FILES:
        return MODULE_FILES[module]
    parts = module.split(".")
    for root in (REPO_ROOT / name for name in MODULE_NAMES):
        for candidate in (root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts, "__init__.py")):
            if candidate.is_file():
                return candidate
    return None


def _blocked_packages() -> set[str]:
    from LungUSBLinesLib.dependencies import ENGINE_REQUIREMENTS, TORCH_REQUIREMENTS

    return (set(ENGINE_REQUIREMENTS) | set(TORCH_REQUIREMENTS)) - ALWAYS_THERE


_IMPORT_PROBE = """
import importlib, importlib.abc, json, sys
blocked = set(json.loads(sys.argv[1]))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
sys.path[:0] = json.loads(sys.argv[2])
failed = {}
for module in json.loads(sys.argv[3]):
    try:
        importlib.import_module(module)
    except ImportError as error:
        failed[module] = str(error)
print(json.dumps(failed))
"""


def modules_failing_without_packages(modules: list[str]) -> dict[str, str]:
    """Which of ``modules`` fail to import when the packages Slicer lacks are absent (run for real)."""
    paths = [str(REPO_ROOT / name) for name in MODULE_NAMES]
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _IMPORT_PROBE,
            json.dumps(sorted(_blocked_packages())),
            json.dumps(paths),
            json.dumps(modules),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return json.loads(done.stdout)


@dataclass
class CodeGraph:
    """Functions and methods of the module files and the bridge, and the modules each imports."""

    heavy: dict[str, bool] = field(default_factory=dict)
    trees: dict[str, ast.Module | None] = field(default_factory=dict)

    def tree(self, module: str) -> ast.Module | None:
        if module not in self.trees:
            path = _source_file(module)
            self.trees[module] = _parse(path) if path else None
        return self.trees[module]

    def module_imports(self, module: str) -> list[str]:
        tree = self.tree(module)
        return [] if tree is None else [m for node in tree.body for m in _imported_modules(node)]

    def function(self, module: str, name: str, cls: str | None = None) -> ast.FunctionDef | None:
        tree = self.tree(module)
        if tree is None:
            return None
        body = tree.body
        if cls is not None:
            classes = [n for n in body if isinstance(n, ast.ClassDef) and n.name == cls]
            body = classes[0].body if classes else []
        found = [n for n in body if isinstance(n, ast.FunctionDef) and n.name == name]
        if not found and cls is not None and cls != PANEL_MIXIN[1] and cls.endswith("Widget"):
            return self.function(PANEL_MIXIN[0], name, PANEL_MIXIN[1])  # methods the widget inherits
        return found[0] if found else None

    def module_aliases(self, module: str) -> dict[str, str]:
        """Names the top of ``module`` binds to repository modules (``from LungUSBLinesLib import panel``)."""
        aliases = {}
        for node in self.tree(module).body if self.tree(module) else ():
            if isinstance(node, ast.Import):
                aliases.update({(a.asname or a.name): a.name for a in node.names if _source_file(a.name)})
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    if _source_file(f"{node.module}.{alias.name}"):
                        aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        return aliases

    def module_is_heavy(self, module: str) -> bool:
        top = module.split(".")[0]
        if top in ALWAYS_THERE or module in MODULE_FILES:
            return False
        if top in _blocked_packages():
            return True
        return self.heavy.get(module, False)

    def needs_packages(self, node: ast.AST, module: str, cls: str | None, seen: set) -> str | None:
        """Why running ``node`` (code of ``module``, inside class ``cls``) needs the engine's
        packages, or None. Code in ``try`` blocks that catch ImportError is taken as guarded, and
        so is a package a function first looks for with ``importlib.util.find_spec("name")``."""
        looked_for = _find_spec_names(node)
        for inner in _walk_unguarded(node):
            for imported, name in _imports_with_names(inner):
                if imported.split(".")[0] in looked_for:
                    continue
                if self.module_is_heavy(imported):
                    return f"imports {imported}"
                if name is not None:
                    why = self.call_needs_packages(imported, name, None, seen)
                    if why:
                        return f"{imported}.{name} {why}"
            if isinstance(inner, ast.Call):
                target = _self_call(inner)
                if target is not None:
                    owner, method = target
                    owner_cls = _logic_class(module) if owner == "logic" else cls
                    why = self.call_needs_packages(module, method, owner_cls, seen)
                    if why:
                        return f"{owner}.{method} {why}"
                elif isinstance(inner.func, ast.Name):
                    why = self.call_needs_packages(module, inner.func.id, None, seen)
                    if why:
                        return f"{inner.func.id} {why}"
                elif isinstance(inner.func, ast.Attribute) and isinstance(inner.func.value, ast.Name):
                    # module.function(): a repository module imported at the top of ``module``
                    imported = self.module_aliases(module).get(inner.func.value.id)
                    why = imported and self.call_needs_packages(imported, inner.func.attr, None, seen)
                    if why:
                        return f"{imported}.{inner.func.attr} {why}"
        return None

    def call_needs_packages(self, module: str, name: str, cls: str | None, seen: set) -> str | None:
        key = (module, name, cls)
        if key in seen or name == REQUIREMENTS_CHECK:
            return None
        seen.add(key)
        function = self.function(module, name, cls)
        if function is None:
            return None
        return self.needs_packages(function, module, cls, seen)


def _find_spec_names(node: ast.AST) -> set[str]:
    return {
        inner.args[0].value
        for inner in ast.walk(node)
        if isinstance(inner, ast.Call)
        and getattr(inner.func, "attr", getattr(inner.func, "id", None)) == "find_spec"
        and inner.args
        and isinstance(inner.args[0], ast.Constant)
    }


def _imported_modules(node: ast.AST) -> list[str]:
    return [module for module, _name in _imports_with_names(node)]


def _imports_with_names(node: ast.AST) -> list[tuple[str, str | None]]:
    if isinstance(node, ast.Import):
        return [(alias.name, None) for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return [(node.module, alias.name) for alias in node.names]
    return []


def _guards_import_error(handler: ast.ExceptHandler) -> bool:
    names = [handler.type] if not isinstance(handler.type, ast.Tuple) else handler.type.elts
    return any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names)


def _walk_unguarded(node: ast.AST):
    """ast.walk, skipping the body of ``try`` blocks whose handlers catch ImportError."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, ast.Try) and any(_guards_import_error(h) for h in current.handlers):
            stack.extend(current.handlers + current.orelse + current.finalbody)
            continue
        stack.extend(ast.iter_child_nodes(current))


def _self_call(call: ast.Call) -> tuple[str, str] | None:
    """("self", m) for self.m(...), ("logic", m) for self.logic.m(...)."""
    func = call.func
    if not isinstance(func, ast.Attribute):
        return None
    if isinstance(func.value, ast.Name) and func.value.id == "self":
        return ("self", func.attr)
    value = func.value
    if (
        isinstance(value, ast.Attribute)
        and value.attr == "logic"
        and isinstance(value.value, ast.Name)
        and value.value.id == "self"
    ):
        return ("logic", func.attr)
    return None


def _logic_class(module: str) -> str:
    return f"{module}Logic"


def _widget_class(module: str) -> str:
    return f"{module}Widget"


def _connected_slots(setup: ast.FunctionDef) -> list[str]:
    """Methods named in ``x.connect("signal(...)", self.method)`` calls; not the poll timers'
    ``timeout()`` slots, which run only for a job that a checked button started."""
    slots = []
    for node in ast.walk(setup):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "connect"
        ):
            signal = node.args[0] if node.args else None
            if isinstance(signal, ast.Constant) and signal.value == "timeout()":
                continue
            for arg in node.args:
                if (
                    isinstance(arg, ast.Attribute)
                    and isinstance(arg.value, ast.Name)
                    and arg.value.id == "self"
                ):
                    slots.append(arg.attr)
    return slots


def _calls(node: ast.AST, name: str) -> bool:
    for inner in ast.walk(node):
        if isinstance(inner, ast.Call):
            func = inner.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called == name:
                return True
    return False


@pytest.fixture(scope="module")
def graph():
    pytest.importorskip("packaging")
    candidates = set()
    pending = list(MODULE_NAMES)
    while pending:  # every repository module the module files can reach by import
        module = pending.pop()
        path = _source_file(module)
        if path is None:
            continue
        for node in ast.walk(_parse(path)):
            for imported in _imported_modules(node):
                if imported not in candidates and _source_file(imported) and imported not in MODULE_FILES:
                    candidates.add(imported)
                    pending.append(imported)
    failing = modules_failing_without_packages(sorted(candidates))
    return CodeGraph(heavy={module: module in failing for module in candidates})


def test_the_probe_tells_a_module_that_needs_opencv_from_one_that_does_not():
    failing = modules_failing_without_packages(["lungus.io.formats", "LungUSBLinesLib.dependencies"])
    assert "cv2" in failing["lungus.io.formats"] and "LungUSBLinesLib.dependencies" not in failing


@pytest.mark.parametrize("module", MODULE_NAMES)
def test_opening_a_module_needs_no_engine_package(graph, module):
    tree = graph.tree(module)
    reasons = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            why = graph.needs_packages(node, module, None, set())
            if why:
                reasons.append(f"module level: {why}")
    for method in ("__init__", "setup", "enter"):
        function = graph.function(module, method, _widget_class(module))
        if function is not None:
            why = graph.needs_packages(function, module, _widget_class(module), set())
            if why:
                reasons.append(f"{_widget_class(module)}.{method}: {why}")
    assert reasons == []


@pytest.mark.parametrize("module", MODULE_NAMES)
def test_every_slot_checks_requirements_before_it_needs_them(graph, module):
    widget = _widget_class(module)
    problems = []
    for slot in sorted(set(_connected_slots(graph.function(module, "setup", widget)))):
        function = graph.function(module, slot, widget)
        checked = False
        for statement in function.body:
            why = None if checked else graph.needs_packages(statement, module, widget, set())
            if why:
                problems.append(f"{widget}.{slot} (line {statement.lineno}): {why}")
                break
            checked = checked or _calls(statement, REQUIREMENTS_CHECK)
    assert problems == []


@pytest.mark.parametrize("module", MODULE_NAMES)
def test_self_tests_install_nothing(graph, module):
    test_class = [
        n for n in graph.tree(module).body if isinstance(n, ast.ClassDef) and n.name == f"{module}Test"
    ]
    assert test_class, f"{module} has no self-test class"
    calls = {
        (inner.func.attr if isinstance(inner.func, ast.Attribute) else getattr(inner.func, "id", None))
        for inner in ast.walk(test_class[0])
        if isinstance(inner, ast.Call)
    }
    assert calls & INSTALLING_CALLS == set()


def test_the_code_path_check_finds_a_slot_that_opens_a_clip_unchecked(graph):
    snippet = ast.parse(
        "def onAddFiles(self):\n    from LungUSBLinesLib.clips import clip_file_name_filter\n    clip_file_name_filter()\n"
    ).body[0]
    assert "lungus.io" in graph.needs_packages(snippet, "LungUSInference", "LungUSInferenceWidget", set())


@pytest.mark.parametrize("ui", sorted(REPO_ROOT.glob("*/Resources/UI/*.ui")), ids=lambda p: p.name)
def test_every_mrml_widget_gets_the_scene(ui):
    root = ET.parse(ui).getroot()
    top = root.find("widget")
    mrml_widgets = {
        w.get("name") for w in top.iter("widget") if w.get("class", "").startswith("qMRML") and w is not top
    }
    connected = {
        c.findtext("receiver")
        for c in root.iter("connection")
        if c.findtext("sender") == top.get("name")
        and c.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)"
        and c.findtext("slot") == "setMRMLScene(vtkMRMLScene*)"
    }
    assert mrml_widgets - connected == set()


# The panel choices each module saves with the scene through its @parameterNodeWrapper class.
SAVED_CHOICES = {
    "LungUSBLines": {"clip", "classifierPath", "segmenterPath", "device", "explanationMethod", "reviewFolder", "queuePath"},
    "LungUSInference": {"inputs", "modelPath", "segmenterPath", "device", "outputFolder", "overlays", "explain", "resume"},
    "LungUSTrain": {
        "task", "exportFormat", "trainingSetsFolder", "manifestPath", "recipePath", "model", "labelSource",
        "epochs", "size", "folds", "seeds", "device", "reviewsFolder", "reviewedModelPath",
    },
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(SAVED_CHOICES))
def test_the_panel_choices_are_saved_with_the_scene(graph, module):
    tree = graph.tree(module)
    wrapped = [
        node
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and any(isinstance(d, ast.Name) and d.id == "parameterNodeWrapper" for d in node.decorator_list)
    ]
    assert len(wrapped) == 1, f"{module} has no @parameterNodeWrapper class"
    fields = {n.target.id for n in wrapped[0].body if isinstance(n, ast.AnnAssign)}
    assert SAVED_CHOICES[module] <= fields
    widget = _widget_class(module)
    for method in (
        "initializeParameterNode",
        "setParameterNode",
        "onSceneStartClose",
        "onSceneEndClose",
        "enter",
    ):
        assert graph.function(module, method, widget) is not None, f"{widget}.{method}"
    assert _calls(graph.function(module, "setParameterNode", widget), "connectGui")
    assert _calls(graph.function(module, "getParameterNode", _logic_class(module)), wrapped[0].name)
    ui = ET.parse(REPO_ROOT / module / "Resources/UI" / f"{module}.ui").getroot()
    named = {p.findtext("string") for p in ui.iter("property") if p.get("name") == "SlicerParameterName"}
    assert named and named <= fields  # connectGui binds these widgets to these fields


# Which field types connectGui binds to which widget classes (the canRepresent methods of
# Slicer v5.12.3 Base/Python/slicer/parameterNodeWrapper/guiConnectors.py, for the classes used here).
CONNECTABLE = {
    "QCheckBox": {"bool"},
    "QSpinBox": {"int"},
    "QLineEdit": {"str"},
    "ctkDirectoryButton": {"pathlib.Path"},
    "ctkPathLineEdit": {"pathlib.Path"},
    "qMRMLNodeComboBox": {"slicer.vtkMRMLSequenceBrowserNode"},
}


def _field_types(wrapped: ast.ClassDef) -> dict[str, str]:
    """Field -> its type, without Annotated[...] (``int`` for ``_number("epochs")``, the Train helper)."""
    types = {}
    for node in wrapped.body:
        if isinstance(node, ast.AnnAssign):
            annotation = node.annotation
            if isinstance(annotation, ast.Subscript) and ast.unparse(annotation.value) == "Annotated":
                annotation = annotation.slice.elts[0]
            elif isinstance(annotation, ast.Call):
                annotation = ast.Name("int")
            types[node.target.id] = ast.unparse(annotation)
    return types


@pytest.mark.parametrize("module", sorted(SAVED_CHOICES))
def test_each_bound_widget_fits_its_field(graph, module):
    tree = graph.tree(module)
    [wrapped] = [
        n for n in tree.body if isinstance(n, ast.ClassDef) and any(ast.unparse(d) == "parameterNodeWrapper" for d in n.decorator_list)
    ]  # fmt: skip
    types = _field_types(wrapped)
    ui = ET.parse(REPO_ROOT / module / "Resources/UI" / f"{module}.ui").getroot()
    ui_classes = {w.get("name"): w.get("class") for w in ui.iter("widget")}
    for widget in ui.iter("widget"):
        for p in widget.findall("property"):
            if p.get("name") == "SlicerParameterName":
                field = p.findtext("string")
                assert types[field] in CONNECTABLE[widget.get("class")], (widget.get("name"), field)
    [widget_class] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == _widget_class(module)]
    for node in widget_class.body:  # the pairs ParameterNodePanelMixin binds by hand
        target = node.targets[0] if isinstance(node, ast.Assign) else None
        if isinstance(target, ast.Name) and target.id in ("panelPaths", "panelLists"):
            for name, field in ast.literal_eval(node.value):
                expected = "ctkPathLineEdit" if node.targets[0].id == "panelPaths" else "QComboBox"
                assert (ui_classes.get(name), types.get(field)) == (expected, "str"), (name, field)
