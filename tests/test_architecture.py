"""The package's shape: no import circle, no oversized module, no private names shared across
modules, and a runner for every stage kind. Read statically (``ast``), so it runs in a moment."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "distilnlu"
MAX_LINES = 600


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str) -> list[tuple[str, list[str]]]:
    """(module imported, names taken from it) for every import statement, lazy ones included."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.append((base, [alias.name for alias in node.names]))
    return found


def own_module(target: str) -> str | None:
    """The distilnlu module an import resolves to (the longest known prefix), or None."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name in MODULES:
        for target, names in imports(name):
            candidates = [f"{target}.{n}" for n in names] + [target]
            for dep in {own_module(c) for c in candidates} - {None, name}:
                assert dep is not None
                if not name.startswith(dep + "."):  # a package's own __init__ is no edge
                    graph[name].add(dep)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_import_graph_is_acyclic():
    graph = import_graph()
    assert "distilnlu.stages.common" in graph["distilnlu.stages.pretrain"]  # the graph is read
    assert find_cycle(graph) is None


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_over_the_size_limit(name):
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name}: {lines} lines; split it by responsibility"


def test_no_private_name_is_imported_from_another_module():
    shared = [
        f"{name} imports {target}.{n}"
        for name in MODULES
        for target, names in imports(name)
        if own_module(target) and own_module(target) != name
        for n in names
        if n.startswith("_")
    ]
    assert shared == [], "make these public in the module that owns them:\n" + "\n".join(shared)


def test_every_stage_kind_has_a_runner():
    from distilnlu.config import STAGE_CLASSES
    from distilnlu.pipeline import RUNNERS

    assert set(RUNNERS) == set(STAGE_CLASSES)
