"""The package's import graph has no cycle, at import time or in ``TYPE_CHECKING`` blocks.

Imports inside functions are left out: they run when the function is called, after every module
has loaded, and are how optional dependencies stay optional. Everything else a module imports
(at its top level, or under ``if TYPE_CHECKING:``) is an edge. A cycle means two modules that
cannot be understood, typed or loaded one without the other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import rgruntime

PACKAGE = Path(rgruntime.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports(tree: ast.Module, name: str, is_package: bool) -> set[str]:
    """Modules of the package imported at the top level or under ``if TYPE_CHECKING``."""
    found: set[str] = set()
    statements: list[ast.stmt] = list(tree.body)
    while statements:
        node = statements.pop()
        if isinstance(node, ast.If | ast.Try):
            statements.extend(node.body)
            statements.extend(node.orelse)
            if isinstance(node, ast.Try):
                for handler in node.handlers:
                    statements.extend(handler.body)
                statements.extend(node.finalbody)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {module for module in found if module.startswith("rgruntime")}


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = top_level_imports(tree, name, path.name == "__init__.py")
        # Loading a module loads its parent packages first: an edge to one of them is Python's,
        # not a dependency of the module's own.
        graph[name] = {
            module
            for module in imported
            if module in paths and module != name and not name.startswith(module + ".")
        }
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (a list of modules, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                cycle = visit(target)
                if cycle is not None:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle is not None:
                return cycle
    return None


def test_the_finder_sees_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 50
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def package_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_the_subpackages_have_no_import_cycle_between_them() -> None:
    packages: dict[str, set[str]] = {}
    for module, imported in import_graph().items():
        targets = packages.setdefault(package_of(module), set())
        targets.update(package_of(target) for target in imported)
        targets.discard(package_of(module))
    assert find_cycle(packages) is None, " -> ".join(find_cycle(packages) or [])


ABOVE_THE_RUNTIME = (
    "rgruntime.agents",
    "rgruntime.tools",
    "rgruntime.semantic",
    "rgruntime.adapters",
)


def test_the_runtime_imports_nothing_above_it_not_even_inside_functions() -> None:
    for path in (PACKAGE / "runtime").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(ABOVE_THE_RUNTIME), (path.name, node.module)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith(ABOVE_THE_RUNTIME), (path.name, alias.name)
