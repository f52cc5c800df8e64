"""The walls between stages (docs/architecture.md): packages import downward only, with no cycle,
counting imports inside functions, which hide a cycle from Python but not from a reader."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import amoseg

SOURCE = Path(amoseg.__file__).parent

#: Bottom to top, as docs/architecture.md draws them. A package may import its own layer's
#: neighbours (acyclically) and every layer below it, never one above.
LAYERS = (
    ("errors", "atomic", "labels", "progress", "parallel"),
    ("io",),
    ("plotting",),
    ("data",),
    ("planning",),
    ("preprocessing",),
    ("model",),
    ("evaluation",),
    ("inference",),
    ("training",),
    ("reporting",),
    ("api",),
    ("demo",),
    ("cli", "__main__"),
)
LAYER = {package: index for index, names in enumerate(LAYERS) for package in names}


def unit_of(path: Path) -> str:
    """The top-level unit a source file belongs to: its subpackage, or its own module name."""
    relative = path.relative_to(SOURCE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported_units(path: Path) -> list[tuple[str, int]]:
    """(unit, line) for every amoseg import in a file, at any depth (functions included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    # the package a relative import starts from: the file's own for __init__.py, else its parent's
    module = ".".join(("amoseg", *path.relative_to(SOURCE).with_suffix("").parts))
    package = module.removesuffix(".__init__") if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parent, base] if base else parent)
            # ``from amoseg import api`` imports the unit named; ``from amoseg import __version__`` the top
            modules = [_from_top(alias.name) for alias in node.names] if base == "amoseg" else [base]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] == "amoseg" and len(parts) > 1:
                found.append((parts[1], node.lineno))
    return found


def _from_top(name: str) -> str:
    is_unit = (SOURCE / name).is_dir() or (SOURCE / f"{name}.py").is_file()
    return f"amoseg.{name}" if is_unit else "amoseg.__init__"


def import_edges() -> dict[tuple[str, str], list[str]]:
    """(importer, imported) unit pairs across units -> where ("file:line")."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(SOURCE.rglob("*.py")):
        source = unit_of(path)
        for target, line in imported_units(path):
            if target != source and target != "__init__":
                edges.setdefault((source, target), []).append(f"{path.relative_to(SOURCE)}:{line}")
    return edges


def find_cycle(edges) -> list[str] | None:
    """One cycle of the unit graph, as a path that returns to its start; None when acyclic."""
    graph: dict[str, set[str]] = {}
    for source, target in edges:
        graph.setdefault(source, set()).add(target)
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for following in sorted(graph.get(node, ())):
            if state.get(following) == 1:
                return [*path[path.index(following) :], following]
            if following not in state and (cycle := visit(following)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_every_unit_has_a_layer():
    units = {unit_of(path) for path in SOURCE.rglob("*.py")} - {"__init__"}
    assert sorted(units - set(LAYER)) == []


def test_no_import_cycle_between_packages():
    cycle = find_cycle(import_edges())
    assert cycle is None, " -> ".join(cycle)


def test_packages_import_downward_only():
    upward = [
        f"{source} -> {target} ({', '.join(where)})"
        for (source, target), where in sorted(import_edges().items())
        if LAYER[target] > LAYER[source]
    ]
    assert upward == []


@pytest.mark.parametrize(
    "edges, cycle",
    [
        ({("a", "b"): [], ("b", "c"): []}, None),
        ({("a", "b"): [], ("b", "c"): [], ("c", "a"): []}, ["a", "b", "c", "a"]),
        ({("x", "a"): [], ("a", "b"): [], ("b", "a"): []}, ["a", "b", "a"]),
    ],
)
def test_the_cycle_finder_finds_cycles(edges, cycle):
    assert find_cycle(edges) == cycle


def test_imports_inside_functions_and_relative_imports_count(tmp_path, monkeypatch):
    package = tmp_path / "amoseg"
    (package / "training").mkdir(parents=True)
    (package / "api.py").write_text("")
    module = package / "training" / "late.py"
    module.write_text(
        "def f():\n    from amoseg.reporting.figures import x\n    from ..inference import run\n"
        "    from amoseg import api, __version__\n"
    )
    monkeypatch.setitem(globals(), "SOURCE", package)
    assert imported_units(module) == [("reporting", 2), ("inference", 3), ("api", 4), ("__init__", 4)]
