"""agi/ has no import cycle: the graph of its modules' imports, read from the source with ast, is
acyclic. Imports inside functions count as edges (an import moved into a function to dodge a cycle
is still a cycle); imports under ``if TYPE_CHECKING:`` do not (they never run)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def modules(root: Path) -> dict[str, Path]:
    out = {}
    for path in sorted((root / "agi").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported(tree: ast.Module, name: str, is_package: bool, known: set[str]) -> set[str]:
    """The agi modules ``name`` imports, wherever in the module (TYPE_CHECKING blocks excepted)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child.test):
                for stmt in child.orelse:
                    visit_one(stmt)
                continue
            visit_one(child)

    def visit_one(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name if is_package else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in known else base)
        visit(node)

    visit(tree)
    edges = set()
    for target in found:
        while target and target not in known:  # agi.x.y.attr -> agi.x.y
            target = target.rpartition(".")[0]
        if target and target != name:
            edges.add(target)
    return edges


def import_graph(root: Path) -> dict[str, set[str]]:
    mods = modules(root)
    return {name: imported(ast.parse(path.read_text(encoding="utf-8")), name, path.name == "__init__.py", set(mods))
            for name, path in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_agi_has_no_import_cycle():
    graph = import_graph(ROOT)
    assert {"agi.sim.queues", "agi.sim.agi_client", "agi.admin.campaigns"} <= set(graph)
    found = cycles(graph)
    assert not found, "import cycles in agi/ (break them, do not hide them in functions):\n" + "\n".join(
        " <-> ".join(c) for c in found)


@pytest.mark.parametrize(
    "files, cycle",
    [
        ({"a.py": "import agi.b\n", "b.py": "def f():\n    from agi import a\n"}, ["agi.a", "agi.b"]),
        ({"a.py": "from agi.b import x\n", "b.py": "from . import a\n"}, ["agi.a", "agi.b"]),
        ({"a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from agi.b import B\n",
          "b.py": "import agi.a\n"}, None),
        ({"p/__init__.py": "from agi.p.m import f\n", "p/m.py": "from agi.q import g\n",
          "q.py": "import agi.p.m\n"}, ["agi.p.m", "agi.q"]),
    ],
)
def test_the_check_sees_cycles_through_functions_but_not_type_checking(tmp_path, files, cycle):
    for rel, text in {"__init__.py": "", **files}.items():
        path = tmp_path / "agi" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert cycles(import_graph(tmp_path)) == ([cycle] if cycle else [])
