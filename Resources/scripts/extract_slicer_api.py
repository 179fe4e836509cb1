"""Extract the Slicer API the LungUS modules may call into Testing/data/slicer_api/slicer_api.json.

How it was made (rerun it the same way after adding a release to the reference)::

    python Resources/scripts/extract_slicer_api.py /work/shared/slicer-reference Testing/data/slicer_api/slicer_api.json

with the project's development environment (slicer-core installed). It reads, without
importing any of them:

- ``slicer.util``: every public top-level function of Slicer-v5.10.0 and Slicer-v5.12.3's
  Base/Python/slicer/util.py with its parameters (name, kind, whether it has a default). The
  test accepts a name only when it is in every release listed (5.10 and 5.12);
- ``slicer.ScriptedLoadableModule``: its classes and their methods (both releases);
- ``slicer.parameterNodeWrapper``: the names its __init__ exports (each submodule's __all__ and
  the names imported from .util), and the names wrapper.py reserves on a wrapped class (a field
  may not use them), Slicer v5.12.3;
- ``PyTorchUtils``: the PyTorchUtilsLogic methods and their parameters (SlicerPyTorch);
- MRML C++ headers the reference holds (vtkMRMLSliceLogic.h, vtkMRMLSliceLayerLogic.h,
  vtkMRMLApplicationLogic.h, vtkMRMLScalarVolumeDisplayNode.h, vtkSlicerPlotsLogic.h): the
  methods each declares, including those its vtkGet/Set/Boolean macros generate;

and, by introspection of the installed ``slicer-core`` (its version is recorded), the methods
of every ``slicer.vtk*`` class (MRML nodes, the scene, logic classes) with their base class, and
the classes of a few core VTK modules the bridge uses (tables, arrays, image data, matrices).

Qt, CTK and Slicer's Qt widget classes (qMRML*, qSlicer*) have no source in the reference and
are not in slicer-core: nothing is extracted for them (see the test's docstring).
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import json
import re
import sys
from pathlib import Path

RELEASES = ("Slicer-v5.10.0", "Slicer-v5.12.3")
MRML_HEADERS = (
    "Slicer-v5.12.3/Libs/MRML/Logic/vtkMRMLSliceLogic.h",
    "Slicer-v5.12.3/Libs/MRML/Logic/vtkMRMLSliceLayerLogic.h",
    "Slicer-v5.12.3/Libs/MRML/Logic/vtkMRMLApplicationLogic.h",
    "Slicer-v5.12.3/Libs/MRML/Core/vtkMRMLScalarVolumeDisplayNode.h",
    "Slicer-v5.12.3/Modules/Loadable/Plots/Logic/vtkSlicerPlotsLogic.h",
)
VTK_MODULES = (
    "vtkmodules.vtkCommonCore",
    "vtkmodules.vtkCommonDataModel",
    "vtkmodules.vtkCommonMath",
    "vtkmodules.vtkCommonTransforms",
    "vtkmodules.vtkCommonExecutionModel",
)
# The methods each vtk macro declares, from the macro's argument (VTK's vtkSetGet.h).
_MACRO_METHODS = {
    "vtkGetMacro": ("Get{}",),
    "vtkSetMacro": ("Set{}",),
    "vtkGetStringMacro": ("Get{}",),
    "vtkSetStringMacro": ("Set{}",),
    "vtkGetObjectMacro": ("Get{}",),
    "vtkSetObjectMacro": ("Set{}",),
    "vtkBooleanMacro": ("{}On", "{}Off"),
    "vtkSetClampMacro": ("Set{}",),
    "vtkGetEnumMacro": ("Get{}",),
    "vtkSetEnumMacro": ("Set{}",),
    "vtkGetVector2Macro": ("Get{}",),
    "vtkSetVector2Macro": ("Set{}",),
    "vtkGetVector3Macro": ("Get{}",),
    "vtkSetVector3Macro": ("Set{}",),
    "vtkGetVector4Macro": ("Get{}",),
    "vtkSetVector4Macro": ("Set{}",),
    "vtkTypeMacro": ("SafeDownCast", "IsA", "IsTypeOf", "NewInstance", "GetClassName"),
}


def _parameters(function: ast.FunctionDef) -> list[dict]:
    arguments = function.args
    positional = arguments.posonlyargs + arguments.args
    defaults = [None] * (len(positional) - len(arguments.defaults)) + list(arguments.defaults)
    parameters = [
        {"name": a.arg, "kind": "positional", "default": d is not None} for a, d in zip(positional, defaults)
    ]
    if arguments.vararg:
        parameters.append({"name": arguments.vararg.arg, "kind": "var_positional", "default": True})
    for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults):
        parameters.append({"name": a.arg, "kind": "keyword_only", "default": d is not None})
    if arguments.kwarg:
        parameters.append({"name": arguments.kwarg.arg, "kind": "var_keyword", "default": True})
    return parameters


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def module_functions(path: Path) -> dict[str, list[dict]]:
    """Public top-level functions of a Python file with their parameters, and its public classes
    with their constructor's (``self`` left out; no __init__: any arguments)."""
    found = {}
    for node in _tree(path).body:
        if node.name.startswith("_") if hasattr(node, "name") else True:
            continue
        if isinstance(node, ast.FunctionDef):
            found[node.name] = _parameters(node)
        elif isinstance(node, ast.ClassDef):
            init = [i for i in node.body if isinstance(i, ast.FunctionDef) and i.name == "__init__"]
            found[node.name] = (
                _parameters(init[0])[1:]
                if init
                else [
                    {"name": "args", "kind": "var_positional", "default": True},
                    {"name": "kwargs", "kind": "var_keyword", "default": True},
                ]
            )
    return found


def module_classes(path: Path) -> dict[str, list[str]]:
    """Public classes of a Python file -> their method names (util's mixins and helpers)."""
    return {
        name: sorted(methods) for name, methods in class_methods(path).items() if not name.startswith("_")
    }


def class_methods(path: Path, names: tuple[str, ...] | None = None) -> dict[str, dict[str, list[dict]]]:
    """Classes of a Python file (or only ``names``) -> their methods with parameters."""
    found = {}
    for node in _tree(path).body:
        if isinstance(node, ast.ClassDef) and (names is None or node.name in names):
            found[node.name] = {
                item.name: _parameters(item) for item in node.body if isinstance(item, ast.FunctionDef)
            }
    return found


def parameter_node_wrapper_exports(folder: Path) -> list[str]:
    exported = set()
    init = _tree(folder / "__init__.py")
    for node in init.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if any(alias.name == "*" for alias in node.names):
                submodule = _tree(folder / f"{node.module}.py")
                for item in submodule.body:
                    if isinstance(item, ast.Assign) and any(
                        isinstance(t, ast.Name) and t.id == "__all__" for t in item.targets
                    ):
                        exported |= {e.value for e in item.value.elts}
            else:
                exported |= {alias.asname or alias.name for alias in node.names}
    return sorted(exported)


def parameter_node_wrapper_reserved(folder: Path) -> list[str]:
    """Names a @parameterNodeWrapper class may not use as fields (wrapper.py sets them on it)."""
    reserved = {"parameterNode"}  # the wrapped node, set by its __init__
    for node in ast.walk(_tree(folder / "wrapper.py")):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "checkedSetAttr":
            reserved.add(node.args[1].value)
    return sorted(reserved)


_CLASS = re.compile(r"^class\s+(?:\w+_EXPORT\s+)?(vtk\w+)\s*:\s*public\s+(\w+)", re.MULTILINE)
_MACRO = re.compile(r"\b(vtk\w+Macro)\(\s*(\w+)")
_METHOD = re.compile(r"^\s*(?:virtual\s+|static\s+|inline\s+)*[\w:<>,\s\*&]+?[\s\*&](\w+)\s*\(", re.MULTILINE)
_NOT_METHODS = {"if", "for", "while", "switch", "return", "sizeof", "operator", "VTK_LEGACY"}


def header_methods(path: Path) -> dict:
    """The class a MRML header declares, its base class and the methods it declares."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    text = re.sub(r"//[^\n]*", "", text)
    match = _CLASS.search(text)
    if match is None:
        raise SystemExit(f"{path}: no class declaration found")
    body = text[match.end() :]
    methods = {name for name in _METHOD.findall(body) if name not in _NOT_METHODS and not name.isupper()}
    for macro, argument in _MACRO.findall(body):
        methods |= {pattern.format(argument) for pattern in _MACRO_METHODS.get(macro, ())}
    return {"class": match.group(1), "base": match.group(2), "methods": sorted(methods)}


def introspected_classes(namespace, prefix: str = "vtk") -> dict[str, dict]:
    """Each class of ``namespace`` -> its base and the public names it adds to its base."""
    classes = {}
    for name in dir(namespace):
        cls = getattr(namespace, name)
        if not name.startswith(prefix) or not isinstance(cls, type):
            continue
        base = cls.__bases__[0] if cls.__bases__ else object
        inherited = set(dir(base))
        classes[name] = {
            "base": base.__name__,
            "methods": sorted(m for m in dir(cls) if not m.startswith("_") and m not in inherited),
        }
    return classes


def extract(reference: Path) -> dict:
    import importlib

    import slicer

    util = {
        release: module_functions(reference / release / "Base/Python/slicer/util.py") for release in RELEASES
    }
    util_classes = {
        release: module_classes(reference / release / "Base/Python/slicer/util.py") for release in RELEASES
    }
    scripted = {
        release: class_methods(reference / release / "Base/Python/slicer/ScriptedLoadableModule.py")
        for release in RELEASES
    }
    vtk_classes = {}
    for module_name in VTK_MODULES:
        vtk_classes.update(introspected_classes(importlib.import_module(module_name)))
    return {
        "provenance": {
            "made_by": "Resources/scripts/extract_slicer_api.py (see its docstring)",
            "reference": "shared/slicer-reference (Slicer v5.10.0 and v5.12.3 sources, SlicerPyTorch)",
            "slicer_core": importlib.metadata.version("slicer-core"),
            "vtk": importlib.metadata.version("vtk") if _installed("vtk") else "bundled with slicer-core",
            "python": sys.version.split()[0],
        },
        "releases": list(RELEASES),
        "slicer_util": util,
        "slicer_util_classes": util_classes,
        "scripted_loadable_module": scripted,
        "parameter_node_wrapper": parameter_node_wrapper_exports(
            reference / "Slicer-v5.12.3/Base/Python/slicer/parameterNodeWrapper"
        ),
        "parameter_node_wrapper_reserved": parameter_node_wrapper_reserved(
            reference / "Slicer-v5.12.3/Base/Python/slicer/parameterNodeWrapper"
        ),
        "pytorch_utils": class_methods(reference / "SlicerPyTorch/PyTorchUtils.py", ("PyTorchUtilsLogic",)),
        "mrml_headers": {Path(h).name: header_methods(reference / h) for h in MRML_HEADERS},
        "slicer_core_classes": introspected_classes(slicer),
        "vtk_modules": list(VTK_MODULES),
        "vtk_classes": vtk_classes,
    }


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path, help="the shared/slicer-reference folder")
    parser.add_argument("out", type=Path, help="the JSON file to write")
    arguments = parser.parse_args(argv)
    listing = extract(arguments.reference)
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(listing, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {arguments.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
