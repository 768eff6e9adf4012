"""The modules of ``impl/`` import one another without a cycle: layers stand one above the
other (issue 22 cut ``config`` <-> ``extensions.loading`` and ``state`` <-> ``extensions.runtime``).

Every import statement counts, wherever it is: at module level, inside a function (a late import
only hides a cycle from the interpreter) and under ``TYPE_CHECKING`` (the types still say which
layer knows which). What does not count is the implicit import of a package's ``__init__`` when
one of its modules is imported: ``ocireg.extensions`` is a facade for extension authors above
its own modules, not a layer below them.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {ROOT / "impl": "ocireg"}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for directory, prefix in PACKAGES.items():
        for path in directory.rglob("*.py"):
            parts = [*prefix.split("."), *path.relative_to(directory).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imported(node: ast.AST, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    # "from a import b" imports the module a.b when there is one, else a name of a
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def import_graph() -> dict[str, set[str]]:
    """Each module, and the modules of ``impl/`` it imports."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for name in _imported(node, module, path.name == "__init__.py"):
                while name and name not in modules:  # a name inside a module: the module
                    name = name.rpartition(".")[0]
                if name and name != module:
                    edges.add(name)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_back() -> None:
    assert cycles(import_graph()) == []


def test_the_detector_sees_late_and_type_only_imports() -> None:
    graph = import_graph()
    # function-level: config reads extension sections through loading, late
    assert "ocireg.extensions.loading" in graph["ocireg.config"]
    # TYPE_CHECKING only: the app state names the scheduler it holds
    assert "ocireg.scheduler" in graph["ocireg.state"]
    # relative imports, which impl/ has none of yet
    (relative,) = ast.parse("from ..registry import store").body
    assert _imported(relative, "ocireg.extensions.loading", is_package=False) == [
        "ocireg.registry",
        "ocireg.registry.store",
    ]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
