"""The package's shape: stages import downwards only, no import cycle, no private reach-ins.

Read from the source with :mod:`ast` (every import, including those inside functions), so a
cycle cannot hide behind a function-local import.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set, Tuple

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "cluster_pack"

# A stage may import from its own floor and the floors below it, never above.
FLOORS = {
    "cluster_pack.errors": 0, "cluster_pack.settings": 0, "cluster_pack.progress": 0,
    "cluster_pack.version": 0, "cluster_pack.atomic": 0, "cluster_pack.cache": 0,
    "cluster_pack.pack": 1, "cluster_pack.store": 2, "cluster_pack.launch": 3,
}


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> Dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, modules: Dict[str, Path]) -> List[Tuple[str, str, int]]:
    """(imported module, imported name or "", line) for every cluster_pack import."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, "", node.lineno) for a in node.names
                      if a.name.startswith("cluster_pack")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cluster_pack"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                if submodule in modules:
                    found.append((submodule, "", node.lineno))
                else:
                    found.append((node.module, alias.name, node.lineno))
    return found


def import_graph() -> Dict[str, Set[str]]:
    modules = all_modules()
    graph: Dict[str, Set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for target, _, _ in imports_of(path, modules):
            if target in modules and target != name:
                graph[name].add(target)
    return graph


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def floor_of(module: str) -> int:
    for prefix, floor in FLOORS.items():
        if module == prefix or module.startswith(prefix + "."):
            return floor
    return 99  # the CLI, the public API and the compatibility shims sit on top


def test_there_is_no_import_cycle_in_the_package():
    graph = import_graph()
    # a package's __init__ re-exporting its submodules is not a cycle of the design
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    assert cycles(graph) == []


def test_stages_import_only_their_own_floor_and_those_below():
    modules = all_modules()
    upward = []
    for name, path in modules.items():
        for target, _, line in imports_of(path, modules):
            if floor_of(target) > floor_of(name):
                upward.append(f"{path.relative_to(SRC)}:{line} imports {target}")
    assert upward == []


def test_no_module_imports_another_modules_private_names():
    modules = all_modules()
    reach_ins = []
    for name, path in modules.items():
        for target, imported, line in imports_of(path, modules):
            leaf = imported or target.rsplit(".", 1)[-1]
            if leaf.startswith("_") and not leaf.startswith("__") and target != name:
                reach_ins.append(f"{path.relative_to(SRC)}:{line} imports {target} {imported}")
        # attribute access such as ``store._mtime`` on an imported module
        tree = ast.parse(path.read_text())
        aliases = {a.asname or a.name: f"{n.module}.{a.name}"
                   for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                   and (n.module or "").startswith("cluster_pack")
                   for a in n.names if f"{n.module}.{a.name}" in modules}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                reach_ins.append(f"{path.relative_to(SRC)}:{node.lineno} uses "
                                 f"{aliases[node.value.id]}.{node.attr}")
    assert reach_ins == []


@pytest.mark.parametrize("floor_module", ["cluster_pack.pack.builder", "cluster_pack.store.publish"])
def test_the_checker_sees_the_imports_it_must_see(floor_module):
    # guards the checks above against passing because they read nothing
    graph = import_graph()
    assert graph[floor_module], f"no cluster_pack import found in {floor_module}"
