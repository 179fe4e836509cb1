"""lungus.data sits below the simulator: the label rules and mask colours live in data, and the
simulator uses them, so no data module imports lungus.sim (not even inside a function)."""

from __future__ import annotations

import ast
from pathlib import Path

import lungus.data

DATA = Path(lungus.data.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the package lungus.data
                base = ["lungus", "data"][: max(0, 3 - node.level)]
                names.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                names.add(node.module)
    return names


def test_no_data_module_imports_the_simulator():
    offenders = {
        str(path.relative_to(DATA)): sorted(
            m for m in _imported_modules(path) if m.split(".")[:2] == ["lungus", "sim"]
        )
        for path in sorted(DATA.rglob("*.py"))
    }
    assert {name: modules for name, modules in offenders.items() if modules} == {}
