"""The engine's import structure: layers one way, no import circles (docs/architecture.md#layers).

Every module of ``LungUSBLines/lungus`` is parsed with ``ast``; every import counts, including
imports inside functions (a lazy import is still a dependency, only a later one) and the names a
package exports lazily through ``lungus.lazy.lazy_exports``. Nothing is imported, so the test
needs neither torch nor Slicer.

Two rules this file does not repeat, because ``Testing/bridge/test_extension_layout.py`` already
holds them: the engine imports no slicer, qt, ctk, vtk or bridge
(``test_the_engine_imports_no_slicer_qt_vtk_or_bridge``), and the bridges import no qt, ctk or
module widget and touch no ``slicer.app`` / ``slicer.mrmlScene`` / ``slicer.modules``
(``test_bridges_import_no_qt_and_no_module_widgets``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[2] / "LungUSBLines" / "lungus"

# The layers from the bottom up: a module may import its own package (or, for a top-level
# module, itself) and anything in a lower layer, never a peer in its own layer or anything
# higher. Each name is a subpackage or a top-level module of ``lungus``; "lungus" is the
# package's own ``__init__``. Why each sits where it does: docs/architecture.md#layers.
LAYERS: tuple[frozenset[str], ...] = (
    # the foundation: errors, then the helpers every layer may use, then those built on atomic
    frozenset({"errors"}),
    frozenset({"lungus", "atomic", "lazy", "device", "model_calls", "progress", "progress_lines", "explanations",
               "clip_rules", "operating_point", "timestamps"}),
    frozenset({"folder_lock", "job_control"}),
    frozenset({"io"}),         # clips in and out: readers, writers, the fan, de-identification
    frozenset({"data"}),       # manifest, labels and crowd logic, label rules, the training input pipeline
    frozenset({"models"}),     # architectures, the registry, the model file and its card
    frozenset({"features"}),   # per-frame deep features of trained encoders, cached per clip and backbone
    frozenset({"predict"}),    # a model file's predictor: windows, masks from logits, class_argmax
    frozenset({"evaluate"}),   # metrics with patient-bootstrap CIs, reports, compare
    frozenset({"train"}),      # losses and the loop; scores its validation with evaluate
    frozenset({"infer"}),      # batch inference, overlays, explanations, results files
    frozenset({"review"}),     # reviewers' verdicts and corrected masks, kept as training data; the review queue
    frozenset({"sim"}),        # the simulator: writes datasets through io and data's rules
    frozenset({"demo", "bench", "studies"}),   # end-to-end runs over sim, train, evaluate, infer, review
    frozenset({"commands"}),   # one module per `lungus` subcommand
    frozenset({"cli"}),        # the parser; it loads each command by name
    frozenset({"__main__"}),   # `python -m lungus`
)


def layer_name(module: str) -> str:
    """``lungus.io.fan`` -> ``io``; ``lungus.errors`` -> ``errors``; ``lungus`` -> ``lungus``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer_rank(module: str) -> int:
    name = layer_name(module)
    for rank, layer in enumerate(LAYERS):
        if name in layer:
            return rank
    raise LookupError(f"{module}: {name!r} has no layer in test_layout.LAYERS; add it (docs/architecture.md#layers)")


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int

    def __str__(self) -> str:
        return f"{self.importer}:{self.line} imports {self.imported}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ENGINE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def engine_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ENGINE.rglob("*.py")) if "__pycache__" not in path.parts}


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name of a (possibly relative) ``from`` import's module."""
    if not level:
        return target or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - level + 1]
    return ".".join(base + ([target] if target else []))


def _lazy_export_targets(tree: ast.Module, package: str) -> Iterator[tuple[str, int]]:
    """The modules named in a ``lazy_exports(package, {name: module})`` table."""
    tables = {
        node.targets[0].id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Dict)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "lazy_exports" and len(node.args) == 2:
            table = node.args[1]
            table = tables.get(table.id) if isinstance(table, ast.Name) else table
            for value in table.values if isinstance(table, ast.Dict) else ():
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    target = value.value
                    yield (target if target.startswith(package + ".") else f"{package}.{target}"), value.lineno


def imports_of(module: str, path: Path, known: set[str]) -> list[Import]:
    """Every engine module ``module`` imports, anywhere in its file.

    ``from lungus.models import registry`` names the submodule ``lungus.models.registry``;
    ``from lungus.io import read_clip`` names the package ``lungus.io``.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Import(module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, is_package, node.level, node.module)
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found.append(Import(module, submodule if submodule in known else source, node.lineno))
    found += [Import(module, target, line) for target, line in _lazy_export_targets(tree, module)]
    unique = {(item.imported, item.line): item for item in found if item.imported in known and item.imported != module}
    return list(unique.values())


@pytest.fixture(scope="module")
def graph() -> list[Import]:
    modules = engine_modules()
    known = set(modules)
    return [item for module, path in modules.items() for item in imports_of(module, path, known)]


def upward_imports(graph: list[Import]) -> list[Import]:
    """Imports of a peer in the same layer or of a higher layer (a package may import itself)."""
    return [
        item for item in graph
        if layer_name(item.importer) != layer_name(item.imported)
        and layer_rank(item.imported) >= layer_rank(item.importer)
    ]


def import_circles(graph: list[Import]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    edges: dict[str, set[str]] = {}
    for item in graph:
        edges.setdefault(item.importer, set()).add(item.imported)
        edges.setdefault(item.imported, set())
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = lowlink[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = lowlink[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(edges[successor]))))
                    break
                if successor in on_stack:
                    lowlink[node] = min(lowlink[node], index[successor])
            else:
                work.pop()
                if work:
                    lowlink[work[-1][0]] = min(lowlink[work[-1][0]], lowlink[node])
                if lowlink[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        circles.append(sorted(component))
    return sorted(circles)


def test_every_engine_package_has_a_layer():
    unplaced = sorted({layer_name(m) for m in engine_modules()} - set().union(*LAYERS))
    assert unplaced == [], f"add these to LAYERS and to docs/architecture.md#layers: {unplaced}"


def test_the_layers_are_one_way(graph):
    violations = [str(item) for item in upward_imports(graph)]
    assert violations == [], "imports of a peer or a higher layer:\n" + "\n".join(violations)


def test_engine_modules_import_no_circle(graph):
    circles = [" <-> ".join(component) for component in import_circles(graph)]
    assert circles == [], "import circles:\n" + "\n".join(circles)


# --- the checks above must be able to fail --------------------------------------------------------


def test_an_upward_import_is_found():
    graph = [Import("lungus.io.fan", "lungus.models.registry", 3), Import("lungus.models.registry", "lungus.io.fan", 5)]
    assert [str(item) for item in upward_imports(graph)] == ["lungus.io.fan:3 imports lungus.models.registry"]


def test_a_peer_import_is_found_but_not_one_inside_the_package():
    graph = [Import("lungus.demo", "lungus.bench.clip", 1), Import("lungus.io.fan", "lungus.io.video", 2)]
    assert [item.importer for item in upward_imports(graph)] == ["lungus.demo"]


def test_a_circle_through_a_function_level_import_is_found(tmp_path):
    package = tmp_path / "lungus" / "models"
    package.mkdir(parents=True)
    (package / "a.py").write_text("from lungus.models.b import thing\n")
    (package / "b.py").write_text("def thing():\n    from lungus.models import a\n    return a\n")
    known = {"lungus.models.a", "lungus.models.b", "lungus.models"}
    graph = [*imports_of("lungus.models.a", package / "a.py", known),
             *imports_of("lungus.models.b", package / "b.py", known)]
    assert import_circles(graph) == [["lungus.models.a", "lungus.models.b"]]


def test_lazy_exports_count_as_imports(tmp_path):
    init = tmp_path / "__init__.py"
    # As lungus.lazy reads the table: a full module path inside the package, or a submodule name.
    init.write_text('from lungus.lazy import lazy_exports\n_EXPORTS = {"Run": "lungus.io.video", "x": "tools"}\n'
                    "__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)\n")
    known = {"lungus.io", "lungus.io.tools", "lungus.io.video", "lungus.lazy"}
    assert sorted(item.imported for item in imports_of("lungus.io", init, known)) == [
        "lungus.io.tools", "lungus.io.video", "lungus.lazy"]


#: Inside ``data``, bottom up (docs/architecture.md#engine-layers): a CSV reader, the label rules,
#: the manifest and its label sources, then the training input pipeline.
DATA_LAYERS = ("csvfile", "labels", "manifests", "pipeline")


def data_rank(module: str) -> int:
    return DATA_LAYERS.index(module.split(".")[2])


def test_the_data_packages_are_one_way(graph):
    inside = [item for item in graph if layer_name(item.importer) == layer_name(item.imported) == "data"
              and item.importer.count(".") >= 2 and item.imported.count(".") >= 2]
    assert {item.importer.split(".")[2] for item in inside} <= set(DATA_LAYERS)
    upward = [str(item) for item in inside if data_rank(item.imported) > data_rank(item.importer)]
    assert upward == [], "a lower data package imports a higher one:\n" + "\n".join(upward)
