"""LungUSBLines.ensurePythonRequirements and ensureTorch, run on Slicer's own slicer.util.

Desktop Slicer cannot run here, so the two functions are taken from the module file as they
are and run against the real ``slicer.util`` that slicer-core ships (Slicer's own
tryWithErrorDisplay, which shows an error and re-raises it). Only what needs the application
stands in: ``slicer.app``, ``qt.Qt.WaitCursor``, the dialogs (which record what they would
show and answer OK), the PyTorch extension, and ``pip_install``, which runs the real pip,
offline, as Slicer's does: ``python -m pip install ARGS``, raising CalledProcessError on failure.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import types
from pathlib import Path

import pytest

from LungUSBLinesLib import dependencies

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")
pytest.importorskip("slicer.util", reason="slicer-core is not installed")

MODULE_FILE = Path(__file__).resolve().parents[2] / "LungUSBLines" / "LungUSBLines.py"
FUNCTIONS = ("ensurePythonRequirements", "ensureTorch", "_restartNeededFor")


class Shown:
    """What the dialogs would have shown, in order: (kind, text)."""

    def __init__(self):
        self.messages: list[tuple[str, str]] = []

    def recorder(self, kind: str, answer=None):
        def show(text, *args, **kwargs):
            self.messages.append((kind, text))
            return answer

        return show


class ApplicationStandIn:
    """The part of slicer.app that tryWithErrorDisplay touches."""

    def testingEnabled(self):
        return False  # so the error is shown, as it is to a user

    def setOverrideCursor(self, cursor):
        pass

    def restoreOverrideCursor(self):
        pass


def pip_install_recorder(calls: list, offline_pip):
    """slicer.util.pip_install as Slicer's: the real pip (offline here), CalledProcessError on failure."""

    def pip_install(arguments):
        calls.append((list(arguments), Path(arguments[1]).read_text() if arguments[:1] == ["-c"] else None))
        offline_pip(*arguments).check_returncode()

    return pip_install


@pytest.fixture
def module(monkeypatch, offline_pip):
    """The module file's requirement functions, bound to slicer.util with the stand-ins."""
    shown, pip_calls = Shown(), []
    monkeypatch.setattr(slicer, "app", ApplicationStandIn(), raising=False)
    monkeypatch.setitem(sys.modules, "qt", types.SimpleNamespace(Qt=types.SimpleNamespace(WaitCursor=3)))
    monkeypatch.setattr(slicer.util, "errorDisplay", shown.recorder("error"))
    monkeypatch.setattr(slicer.util, "infoDisplay", shown.recorder("info"))
    monkeypatch.setattr(slicer.util, "confirmOkCancelDisplay", shown.recorder("confirm", answer=True))
    monkeypatch.setattr(slicer.util, "pip_install", pip_install_recorder(pip_calls, offline_pip))
    tree = ast.parse(MODULE_FILE.read_text(encoding="utf-8"))
    wanted = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in FUNCTIONS]
    assert {node.name for node in wanted} >= {"ensurePythonRequirements", "ensureTorch"}
    namespace = {"slicer": slicer, "dependencies": dependencies}
    exec(compile(ast.Module(body=wanted, type_ignores=[]), str(MODULE_FILE), "exec"), namespace)
    return types.SimpleNamespace(shown=shown, pip_calls=pip_calls, **{n: namespace[n] for n in FUNCTIONS if n in namespace})


def test_a_pip_failure_is_shown_and_returns_false(module, monkeypatch):
    monkeypatch.setitem(dependencies.ENGINE_REQUIREMENTS, "lungus_no_such_module", "lungus-no-such-module>=1")
    assert module.ensurePythonRequirements() is False
    assert [kind for kind, _ in module.shown.messages] == ["confirm", "error"]
    assert module.shown.messages[1][1].startswith("Installing Python packages failed.")


def test_pip_is_given_the_bundled_pins_and_only_what_is_missing(module, monkeypatch):
    monkeypatch.setitem(dependencies.ENGINE_REQUIREMENTS, "lungus_no_such_module", "lungus-no-such-module>=1")
    module.ensurePythonRequirements()
    [(arguments, constraints)] = module.pip_calls
    assert arguments[0] == "-c" and arguments[2:] == ["lungus-no-such-module>=1"]
    assert constraints == dependencies.bundled_constraints() and "numpy==" in constraints


def test_a_bundled_package_too_old_is_refused_without_pip(module, monkeypatch):
    monkeypatch.setitem(dependencies.ENGINE_REQUIREMENTS, "pydicom", "pydicom>=999")
    assert module.ensurePythonRequirements() is False
    assert module.pip_calls == []
    [(kind, text)] = module.shown.messages
    assert kind == "error" and text.startswith("Slicer's bundled pydicom")


def test_everything_present_needs_no_dialog(module):
    assert module.ensurePythonRequirements() is True
    assert module.shown.messages == [] and module.pip_calls == []


class PyTorchUtilsStandIn(types.ModuleType):
    """The PyTorch extension's module: records installTorch's arguments, as installTorch returns torch."""

    def __init__(self, fail: bool = False):
        super().__init__("PyTorchUtils")
        self.requests: list[dict] = []
        stand_in = self

        class PyTorchUtilsLogic:
            @staticmethod
            def torchInstalled():
                return True

            def installTorch(self, askConfirmation=False, forceComputationBackend=None, torchVersionRequirement=None,
                             torchvisionVersionRequirement=None):
                stand_in.requests.append({"torch": torchVersionRequirement, "torchvision": torchvisionVersionRequirement})
                if fail:
                    raise subprocess.CalledProcessError(1, ["light_the_torch", "install"])
                return sys.modules.get("torch")

        self.PyTorchUtilsLogic = PyTorchUtilsLogic


@pytest.mark.torch
def test_a_torch_below_the_floor_is_updated_through_the_pytorch_extension(module, monkeypatch):
    import torch  # noqa: F401 - imported, so the update takes effect only after a restart

    extension = PyTorchUtilsStandIn()
    monkeypatch.setitem(sys.modules, "PyTorchUtils", extension)
    monkeypatch.setitem(dependencies.TORCH_REQUIREMENTS, "torch", "torch>=999")
    assert module.ensureTorch() is False
    assert extension.requests == [{"torch": ">=999", "torchvision": ">=0.16"}]
    [(kind, text)] = module.shown.messages
    assert kind == "info" and "restart Slicer" in text


@pytest.mark.torch
def test_torch_at_the_floor_asks_nothing(module, monkeypatch):
    extension = PyTorchUtilsStandIn()
    monkeypatch.setitem(sys.modules, "PyTorchUtils", extension)
    assert module.ensureTorch() is True
    assert extension.requests == []


def test_a_failed_torch_install_is_shown_and_returns_false(module, monkeypatch):
    monkeypatch.setitem(sys.modules, "PyTorchUtils", PyTorchUtilsStandIn(fail=True))
    monkeypatch.setitem(dependencies.TORCH_REQUIREMENTS, "torch", "torch>=999")
    assert module.ensureTorch() is False
    [(kind, text)] = module.shown.messages
    assert kind == "error" and text.startswith("Installing PyTorch failed.")
