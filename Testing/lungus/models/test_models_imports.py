"""The structure of lungus.models: no import circles, and the registry imports no architecture
(each registers itself where it is defined), so neither can drift back."""

from __future__ import annotations

import ast
from pathlib import Path

import lungus.models
from lungus.models.registry import MODEL_REGISTRY

PACKAGE = "lungus.models"
FOLDER = Path(lungus.models.__file__).parent


def _imports_within_the_package() -> dict[str, set[str]]:
    """Module -> the lungus.models modules it imports anywhere (top level or inside a function)."""
    modules = {path.stem: path for path in FOLDER.glob("*.py") if path.stem != "__init__"}
    graph = {}
    for name, path in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == PACKAGE:
                imported |= {alias.name for alias in node.names if alias.name in modules}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE + "."):
                imported.add(node.module.removeprefix(PACKAGE + "."))
            elif isinstance(node, ast.Import):
                names = (alias.name for alias in node.names if alias.name.startswith(PACKAGE + "."))
                imported |= {name.removeprefix(PACKAGE + ".") for name in names}
        graph[name] = imported - {name}
    return graph


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    found, todo = set(), [start]
    while todo:
        for imported in graph.get(todo.pop(), ()):
            if imported not in found:
                found.add(imported)
                todo.append(imported)
    return found


def test_no_import_circles_within_lungus_models():
    graph = _imports_within_the_package()
    circles = sorted(name for name in graph if name in _reachable(graph, name))
    assert not circles, f"modules of lungus.models that import themselves through others: {circles}"


def test_architectures_register_where_defined_and_the_registry_imports_none():
    defining = {spec.factory.__module__.removeprefix(PACKAGE + ".") for spec in MODEL_REGISTRY.values()}
    assert "registry" not in defining
    assert {"video_resnet", "frame_cnn", "cnn_lstm", "unet", "ensemble"} <= defining
    assert not _reachable(_imports_within_the_package(), "registry") & defining
