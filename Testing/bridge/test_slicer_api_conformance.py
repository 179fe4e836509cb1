"""Every Slicer name the module files and the bridge call exists in Slicer 5.10 and 5.12.

Desktop Slicer cannot run here, so the three module files and the bridge libraries are read
(ast) and each Slicer name they use is looked up in Testing/data/slicer_api/slicer_api.json,
extracted from Slicer's own sources (and slicer-core) by Resources/scripts/extract_slicer_api.py
(its docstring says how). Checked:

- ``slicer.util.X`` (attribute or ``from slicer.util import X``): X exists in BOTH util.py copies
  (5.10.0 and 5.12.3); for calls, the keyword names passed exist and the positional count fits,
  in both releases;
- ``from slicer.ScriptedLoadableModule import X`` exists in both releases, and every ``self.m()``
  a module, widget, logic or test class calls without defining it is a method of its Slicer base
  class (or of util's VTKObservationMixin) in both;
- ``from slicer.parameterNodeWrapper import X`` is one of its exports (5.12.3);
- ``PyTorchUtils.PyTorchUtilsLogic`` methods called, with their keyword names (SlicerPyTorch);
- ``slicer.vtk*`` classes and their attributes, ``slicer.mrmlScene.X``, ``vtk.X``: in slicer-core's
  classes (its version is in the listing: a preview newer than 5.12, so a method added after 5.12
  would pass) or the MRML headers the reference holds;
- any VTK-style method call ``obj.Name(...)`` (capitalised): Name is a method of some MRML or VTK
  class in the listing. The object's class is not inferred, so a real method called on the wrong
  class passes; a misspelled or missing one fails.

Not checked against source, because the reference holds none: ``qt.*``, ``ctk.*``, ``slicer.app``,
Slicer's Qt widget classes (``slicer.qMRML*``, ``slicer.qSlicer*``, and those the .ui files use),
``slicer.modules.*`` and the Qt signals connected with ``connect("signal(...)")``. Their names are
held to the REVIEWED lists below (read against Qt's, CTK's and Slicer's documentation by hand,
not their source), so a new one fails here until someone reviews it. Every ``self.ui.NAME`` must
be a widget of the module's .ui file, and each signal connected on it one reviewed for its class.
Not checked at all: the methods and properties of Qt/CTK/Slicer widgets (lower-case calls such as
``currentNode()``), the methods of ``slicer.modules.*`` objects, and anything called on an object
whose MRML/VTK class is not named (only that some listed class has the method).
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
API = json.loads((REPO_ROOT / "Testing/data/slicer_api/slicer_api.json").read_text(encoding="utf-8"))
MODULE_NAMES = ("LungUSBLines", "LungUSTrain", "LungUSInference")
SCANNED = sorted(
    [REPO_ROOT / name / f"{name}.py" for name in MODULE_NAMES]
    + [path for name in MODULE_NAMES for path in (REPO_ROOT / name / f"{name}Lib").glob("*.py")]
)

# Names with no source in the reference: reviewed by hand against Slicer's and Qt's documentation.
REVIEWED_QT = {
    "QComboBox", "QDir", "QFileDialog", "QHeaderView", "QSettings", "QTableWidgetItem", "QTimer", "Qt",
    "QWidget", "QLabel", "QPushButton", "QCheckBox", "QSpinBox", "QLineEdit", "QListWidget",
    "QPlainTextEdit", "QProgressBar", "QTableWidget", "QFormLayout", "QVBoxLayout", "QHBoxLayout",
    "QSpacerItem", "QGroupBox", "QTextEdit", "QShortcut", "QKeySequence",
}  # fmt: skip
REVIEWED_CTK = {"ctkCollapsibleButton", "ctkPathLineEdit", "ctkDirectoryButton", "ctkComboBox"}
REVIEWED_SLICER_QT = {
    "qMRMLWidget", "qMRMLNodeComboBox", "qMRMLTableView", "qMRMLSequenceBrowserPlayWidget",
    "qMRMLSequenceBrowserSeekWidget",
}  # fmt: skip
# Signals the modules connect to, by widget class (Qt 5.15 and CTK documentation, reviewed by hand).
REVIEWED_SIGNALS = {
    "QPushButton": {"clicked(bool)", "toggled(bool)"},
    "QCheckBox": {"clicked(bool)", "toggled(bool)", "stateChanged(int)"},
    "QComboBox": {"currentIndexChanged(int)", "currentTextChanged(QString)"},
    "QSpinBox": {"valueChanged(int)"},
    "QLineEdit": {"textChanged(QString)", "editingFinished()"},
    "ctkPathLineEdit": {"currentPathChanged(QString)"},
    "ctkDirectoryButton": {"directoryChanged(QString)"},
    "qMRMLNodeComboBox": {"currentNodeChanged(vtkMRMLNode*)", "currentNodeChanged(bool)"},
    "QTimer": {"timeout()"},
    "QShortcut": {"activated()"},
}
REVIEWED_SLICER_MODULES = {"sequences", "plots"}  # Slicer core modules Sequences and Plots
REVIEWED_SLICER_APP = {"processEvents", "layoutManager", "temporaryPath", "connect", "applicationLogic"}
SLICER_GLOBALS = {"mrmlScene", "app", "util", "modules", "ScriptedLoadableModule", "parameterNodeWrapper"}


def _union_methods() -> set[str]:
    names: set[str] = set()
    for listing in (API["slicer_core_classes"], API["vtk_classes"]):
        for cls in listing.values():
            names.update(cls["methods"])
    for header in API["mrml_headers"].values():
        names.update(header["methods"])
    return names


ALL_MRML_VTK_METHODS = _union_methods()


def _class_attributes(cls: str) -> set[str]:
    """Public names of a slicer-core or VTK class, its bases' included."""
    names: set[str] = set()
    while cls:
        entry = API["slicer_core_classes"].get(cls) or API["vtk_classes"].get(cls)
        header = next((h for h in API["mrml_headers"].values() if h["class"] == cls), None)
        if entry is None and header is None:
            break
        names.update(entry["methods"] if entry else header["methods"])
        cls = (entry or header)["base"]
    return names


def _in_all_releases(section: str) -> dict[str, list]:
    """Names of ``section`` present in every release, with each release's entry."""
    per_release = API[section]
    common = set.intersection(*(set(per_release[r]) for r in API["releases"]))
    return {name: [per_release[r][name] for r in API["releases"]] for name in common}


UTIL = _in_all_releases("slicer_util")
UTIL_CLASSES = _in_all_releases("slicer_util_classes")
SCRIPTED = _in_all_releases("scripted_loadable_module")


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _check_arguments(what: str, call: ast.Call, signatures: list[list[dict]]) -> list[str]:
    """The keyword names and positional count of ``call`` against each release's parameters."""
    problems = []
    for parameters in signatures:
        names = {p["name"] for p in parameters if p["kind"] != "var_keyword"}
        any_keyword = any(p["kind"] == "var_keyword" for p in parameters)
        positional = [p for p in parameters if p["kind"] == "positional"]
        any_positional = any(p["kind"] == "var_positional" for p in parameters)
        for keyword in call.keywords:
            if keyword.arg is not None and keyword.arg not in names and not any_keyword:
                problems.append(f"{what}() has no parameter {keyword.arg!r}")
        if not any_positional and not any(isinstance(a, ast.Starred) for a in call.args):
            if len(call.args) > len(positional):
                problems.append(f"{what}() takes at most {len(positional)} positional arguments")
        given = {k.arg for k in call.keywords}
        required = [p["name"] for p in positional[len(call.args) :] if not p["default"]]
        if any(k.arg is None for k in call.keywords):
            required = []
        missing = [name for name in required if name not in given]
        if missing:
            problems.append(f"{what}() is missing {missing}")
    return sorted(set(problems))


@dataclass
class Finding:
    path: str
    line: int
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.problem}"


def check_source(source: str, path: str = "<snippet>") -> list[Finding]:
    """Every Slicer name in ``source`` that the listing does not hold, as findings."""
    tree = ast.parse(source, filename=path)
    findings: list[Finding] = []

    def report(node: ast.AST, problem: str) -> None:
        findings.append(Finding(path, getattr(node, "lineno", 0), problem))

    torch_logic_names = {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
        and _dotted(node.value.func) == "PyTorchUtils.PyTorchUtilsLogic"
        for target in node.targets if isinstance(target, ast.Name)
    }  # fmt: skip
    pytorch_logic = API["pytorch_utils"]["PyTorchUtilsLogic"]
    from_util = {
        alias.asname or alias.name: alias.name
        for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module == "slicer.util"
        for alias in node.names
    }  # fmt: skip
    # Capitalised calls on imported Python modules (subprocess.Popen, csv.DictReader) are classes.
    python_modules = {
        (alias.asname or alias.name).split(".")[0]
        for node in ast.walk(tree) if isinstance(node, ast.Import)
        for alias in node.names
    } - {"slicer", "vtk"}  # fmt: skip

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            listing = {
                "slicer.util": set(UTIL) | set(UTIL_CLASSES),
                "slicer.ScriptedLoadableModule": set(SCRIPTED),
                "slicer.parameterNodeWrapper": set(API["parameter_node_wrapper"]),
                "slicer": SLICER_GLOBALS | set(API["slicer_core_classes"]),
            }.get(node.module)
            for alias in node.names if listing is not None else ():
                if alias.name != "*" and alias.name not in listing:
                    report(node, f"{node.module} has no {alias.name} in every supported release")
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            if dotted is None:
                continue
            parts = dotted.split(".")
            if parts[:2] == ["slicer", "util"] and len(parts) >= 3:
                if parts[2] not in UTIL and parts[2] not in UTIL_CLASSES:
                    report(node, f"slicer.util.{parts[2]} is not in every supported release's util.py")
            elif parts[:2] == ["slicer", "modules"] and len(parts) >= 3:
                if parts[2] not in REVIEWED_SLICER_MODULES:
                    report(node, f"slicer.modules.{parts[2]} is not a reviewed Slicer module")
            elif parts[:2] == ["slicer", "app"] and len(parts) >= 3:
                if parts[2] not in REVIEWED_SLICER_APP:
                    report(node, f"slicer.app.{parts[2]} is not reviewed")
            elif parts[:2] == ["slicer", "mrmlScene"] and len(parts) >= 3:
                if parts[2] not in _class_attributes("vtkMRMLScene"):
                    report(node, f"vtkMRMLScene has no {parts[2]}")
            elif parts[0] == "slicer" and len(parts) >= 2 and parts[1] not in SLICER_GLOBALS:
                if parts[1].startswith("vtk"):
                    if parts[1] not in API["slicer_core_classes"]:
                        report(node, f"slicer.{parts[1]} is not a slicer-core class")
                    elif len(parts) >= 3 and parts[2] not in _class_attributes(parts[1]):
                        report(node, f"{parts[1]} has no {parts[2]}")
                elif parts[1] not in REVIEWED_SLICER_QT:
                    report(node, f"slicer.{parts[1]} is not a reviewed Slicer class")
            elif parts[0] == "vtk" and len(parts) >= 2:
                if parts[1] not in API["vtk_classes"]:
                    report(node, f"vtk.{parts[1]} is not in the listed VTK modules")
                elif len(parts) >= 3 and parts[2] not in _class_attributes(parts[1]):
                    report(node, f"{parts[1]} has no {parts[2]}")
            elif parts[0] == "qt" and len(parts) >= 2 and parts[1] not in REVIEWED_QT:
                report(node, f"qt.{parts[1]} is not reviewed")
            elif parts[0] == "ctk" and len(parts) >= 2 and parts[1] not in REVIEWED_CTK:
                report(node, f"ctk.{parts[1]} is not reviewed")
        if isinstance(node, ast.Call):
            dotted = _dotted(node.func) or ""
            parts = dotted.split(".")
            if parts[:2] == ["slicer", "util"] and len(parts) == 3 and parts[2] in UTIL:
                for problem in _check_arguments(dotted, node, UTIL[parts[2]]):
                    report(node, problem)
            elif len(parts) == 1 and from_util.get(parts[0]) in UTIL:  # from slicer.util import f; f(...)
                for problem in _check_arguments(
                    f"slicer.util.{from_util[parts[0]]}", node, UTIL[from_util[parts[0]]]
                ):
                    report(node, problem)
            elif (
                isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Call)
                and _dotted(node.func.value.func) == "PyTorchUtils.PyTorchUtilsLogic"
            ):  # PyTorchUtils.PyTorchUtilsLogic().method(...)
                method = node.func.attr
                if method not in pytorch_logic:
                    report(node, f"PyTorchUtilsLogic has no {method}")
                else:
                    for problem in _check_arguments(
                        f"PyTorchUtilsLogic.{method}", node, [pytorch_logic[method][1:]]
                    ):
                        report(node, problem)
            elif len(parts) == 2 and parts[0] in torch_logic_names:
                if parts[1] not in pytorch_logic:
                    report(node, f"PyTorchUtilsLogic has no {parts[1]}")
                else:
                    for problem in _check_arguments(dotted, node, [pytorch_logic[parts[1]][1:]]):
                        report(node, problem)
            elif (
                isinstance(node.func, ast.Attribute)
                and node.func.attr[:1].isupper()
                and parts[0] not in {"qt", "ctk", "slicer", "vtk"} | python_modules
                and node.func.attr not in ALL_MRML_VTK_METHODS
            ):
                report(node, f"{node.func.attr}() is a method of no MRML or VTK class in the listing")
    findings += _check_base_class_calls(tree, path)
    return findings


def _project_classes() -> dict[str, set[str]]:
    """Classes the module files define (e.g. the widgets' shared mixin) -> their methods."""
    classes = {}
    for name in MODULE_NAMES:
        tree = ast.parse((REPO_ROOT / name / f"{name}.py").read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                classes[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
    return classes


PROJECT_CLASSES = _project_classes()


def _check_base_class_calls(tree: ast.Module, path: str) -> list[Finding]:
    """``self.m()`` in a class deriving from a ScriptedLoadableModule class, m not defined in it."""
    findings = []
    mixin = set(UTIL_CLASSES.get("VTKObservationMixin", [[]])[0])
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        bases = [_dotted(b) for b in cls.bases]
        slicer_bases = [b for b in bases if b in SCRIPTED]
        if not slicer_bases:
            continue
        own = {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}
        inherited = set.intersection(
            *(set(SCRIPTED[b][i]) for b in slicer_bases for i in range(len(API["releases"])))
        )
        if "VTKObservationMixin" in bases:
            inherited |= mixin
        for base in bases:
            inherited |= PROJECT_CLASSES.get(base, set()) if base not in SCRIPTED else set()
        for node in ast.walk(cls):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "self"
                and node.func.attr not in own
                and node.func.attr not in inherited
                and not node.func.attr.startswith("assert")  # unittest.TestCase, the test base's base
            ):
                findings.append(
                    Finding(path, node.lineno, f"{cls.name}: self.{node.func.attr}() is defined nowhere")
                )
    return findings


@pytest.mark.parametrize("path", SCANNED, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_slicer_name_exists_in_the_supported_releases(path):
    findings = check_source(path.read_text(encoding="utf-8"), str(path.relative_to(REPO_ROOT)))
    assert [str(f) for f in findings] == []


@pytest.mark.parametrize("ui", sorted(REPO_ROOT.glob("*/Resources/UI/*.ui")), ids=lambda p: p.name)
def test_every_ui_widget_class_is_reviewed(ui):
    import xml.etree.ElementTree as ET

    classes = {w.get("class") for w in ET.parse(ui).getroot().iter("widget")}
    assert classes - REVIEWED_QT - REVIEWED_CTK - REVIEWED_SLICER_QT == set()


@pytest.mark.parametrize(
    "snippet, problem",
    [
        ("import slicer\nslicer.util.confirmOkCancelDisplays('x')", "slicer.util.confirmOkCancelDisplays"),
        ("from slicer.util import pip_instal", "slicer.util has no pip_instal"),
        (
            "import slicer\nslicer.util.launchConsoleProcess(['a'], updateEnviroment={})",
            "no parameter 'updateEnviroment'",
        ),
        ("import slicer\nslicer.util.loadUI()", "missing ['path']"),
        ("from slicer.util import loadUI\nloadUI('a', 'b')", "takes at most 1 positional"),
        ("import slicer\nslicer.vtkMRMLSequenceNodee()", "slicer.vtkMRMLSequenceNodee is not"),
        ("import slicer\nslicer.mrmlScene.AddNewNodeByClas('x')", "vtkMRMLScene has no AddNewNodeByClas"),
        ("node.GetNumberOfDataNodez()", "GetNumberOfDataNodez() is a method of no"),
        (
            "import PyTorchUtils\nlogic = PyTorchUtils.PyTorchUtilsLogic()\nlogic.torchInstaled()",
            "no torchInstaled",
        ),
        (
            "import PyTorchUtils\nlogic = PyTorchUtils.PyTorchUtilsLogic()\nlogic.installTorch(askConfirm=True)",
            "no parameter 'askConfirm'",
        ),
        (
            "import PyTorchUtils\nPyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirm=True)",
            "no parameter 'askConfirm'",
        ),
        ("import qt\nqt.QFileDialogg.getOpenFileName()", "qt.QFileDialogg is not reviewed"),
        (
            "from slicer.ScriptedLoadableModule import ScriptedLoadableModuleTest\n"
            "class T(ScriptedLoadableModuleTest):\n    def runTest(self):\n        self.delayDisplays('x')\n",
            "self.delayDisplays() is defined nowhere",
        ),
    ],
)
def test_a_missing_or_misspelled_name_is_found(snippet, problem):
    assert any(problem in str(f) for f in check_source(snippet)), check_source(snippet)


def test_names_that_exist_pass():
    snippet = (
        "import slicer\nfrom slicer.util import VTKObservationMixin\n"
        "slicer.util.errorDisplay('x', detailedText='y')\n"
        "slicer.util.launchConsoleProcess(['a'], updateEnvironment={}, cwd='.')\n"
        "slicer.mrmlScene.AddNewNodeByClass('vtkMRMLTableNode')\nnode.GetNumberOfDataNodes()\n"
    )
    assert check_source(snippet) == []


def test_a_name_only_one_release_has_fails():
    only_512 = set(API["slicer_util"]["Slicer-v5.12.3"]) - set(API["slicer_util"]["Slicer-v5.10.0"])
    assert "executePythonModule" in only_512  # added in 5.12
    assert check_source("import slicer\nslicer.util.executePythonModule('m', [])") != []


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_no_parameter_node_field_uses_a_reserved_name(name):
    tree = ast.parse((REPO_ROOT / name / f"{name}.py").read_text(encoding="utf-8"))
    fields = {
        item.target.id
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and any(ast.unparse(d) == "parameterNodeWrapper" for d in node.decorator_list)
        for item in node.body
        if isinstance(item, ast.AnnAssign)
    }
    assert fields, f"{name} has no @parameterNodeWrapper fields"
    assert fields & set(API["parameter_node_wrapper_reserved"]) == set()


def _ui_widgets(module: str) -> dict[str, str]:
    import xml.etree.ElementTree as ET

    ui = ET.parse(REPO_ROOT / module / "Resources/UI" / f"{module}.ui").getroot()
    return {w.get("name"): w.get("class") for w in ui.iter("widget")}


def check_ui_use(source: str, widgets: dict[str, str], path: str = "<snippet>") -> list[Finding]:
    """``self.ui.NAME`` must be a widget of the module's .ui, and ``self.ui.NAME.connect("signal")``
    (or ``self.pollTimer.connect``) a reviewed signal of its class."""
    findings = []
    for node in ast.walk(ast.parse(source)):
        dotted = _dotted(node) if isinstance(node, ast.Attribute) else None
        if dotted and dotted.startswith("self.ui.") and dotted.count(".") == 2:
            name = dotted.split(".")[2]
            if name not in widgets:
                findings.append(Finding(path, node.lineno, f"the .ui has no widget {name!r}"))
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "connect"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            owner = _dotted(node.func.value) or ""
            widget_class = widgets.get(owner.split(".")[-1]) if owner.startswith("self.ui.") else None
            widget_class = "QTimer" if owner == "self.pollTimer" else widget_class
            if widget_class and node.args[0].value not in REVIEWED_SIGNALS.get(widget_class, set()):
                findings.append(
                    Finding(
                        path, node.lineno, f"{widget_class} has no reviewed signal {node.args[0].value!r}"
                    )
                )
    return findings


@pytest.mark.parametrize("module", MODULE_NAMES)
def test_widgets_and_signals_the_module_uses_are_in_its_ui(module):
    path = REPO_ROOT / module / f"{module}.py"
    findings = check_ui_use(
        path.read_text(encoding="utf-8"), _ui_widgets(module), str(path.relative_to(REPO_ROOT))
    )
    assert [str(f) for f in findings] == []


@pytest.mark.parametrize(
    "snippet, problem",
    [
        ("self.ui.analyseButon.enabled = False", "no widget 'analyseButon'"),
        ('self.ui.analyseButton.connect("clicked()", f)', "no reviewed signal 'clicked()'"),
        ('self.ui.clipSelector.connect("currentNodeChanged(vtkMRMLNode)", f)', "no reviewed signal"),
    ],
)
def test_a_misspelled_widget_or_signal_is_found(snippet, problem):
    findings = check_ui_use(snippet, _ui_widgets("LungUSBLines"))
    assert any(problem in str(f) for f in findings), findings
