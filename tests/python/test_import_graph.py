"""q2key's modules import one another without a cycle.

A cycle is a layering mistake even when it is hidden where Python tolerates it (an import inside
a function, or under ``TYPE_CHECKING``): the two modules cannot be read, tested or moved apart.
The graph is read from the source with :mod:`ast`, so every import counts, wherever it is.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "q2key"
SOURCE = Path(__file__).resolve().parents[2] / "python" / PACKAGE


def _module_name(path: Path) -> str:
    if path.name == "__init__.py":
        return PACKAGE
    return f"{PACKAGE}.{path.stem}"


def _imported(node: ast.Import | ast.ImportFrom, modules: set[str]) -> set[str]:
    """The q2key modules one import statement names (``from . import x`` names module ``x`` if it is one)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in modules}
    if node.level > 1:
        raise AssertionError(f"line {node.lineno}: q2key has no subpackages to import from with level {node.level}")
    base = PACKAGE if node.level == 1 else ""
    if node.module:
        base = f"{base}.{node.module}" if base else node.module
    if base not in modules:
        return set()
    submodules = {f"{base}.{alias.name}" for alias in node.names} & modules
    names_from_base = [alias.name for alias in node.names if f"{base}.{alias.name}" not in modules]
    return submodules | ({base} if names_from_base else set())


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in sorted(SOURCE.glob("*.py"))}
    # The native module has a stub package, not a source: a module that imports nothing of q2key's.
    stubs = {f"{PACKAGE}.{p.parent.name}" for p in SOURCE.glob("*/__init__.pyi")}
    modules = set(files) | {_module_name(p) for p in SOURCE.glob("*.pyi")} | stubs
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges: set[str] = set()
        for node in ast.walk(tree):  # every import: top level, in functions, under TYPE_CHECKING
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges |= _imported(node, modules)
        graph[name] = edges - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that starts and ends at the same module, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_relative_imports_resolve_to_modules() -> None:
    modules = {"q2key", "q2key._a", "q2key._b"}
    (from_dot,) = ast.parse("from . import _a, __version__").body
    (from_module,) = ast.parse("from ._b import thing").body
    assert isinstance(from_dot, ast.ImportFrom) and isinstance(from_module, ast.ImportFrom)
    assert _imported(from_dot, modules) == {"q2key._a", "q2key"}
    assert _imported(from_module, modules) == {"q2key._b"}


def test_the_graph_covers_every_module() -> None:
    graph = import_graph()
    assert "q2key._encode" in graph["q2key"]
    assert "q2key._native" in graph["q2key._args"], "the native module (a stub package) is a module of its own"
    assert len(graph) == len(list(SOURCE.glob("*.py")))


def test_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
