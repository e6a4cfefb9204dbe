"""The import graph of the runtime: no cycles in ``stream/`` and ``engines/`` (counting imports
inside functions, which would only hide one), and dependencies pointing one way: ``stream``
uses ``engines`` and ``models``, ``engines`` uses ``models``, ``models`` imports neither (its
lab, ``models.lab``, may evaluate through ``engines``)."""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGES = ("stream", "engines", "models")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, known: set[str]) -> set[str]:
    """The first-party modules ``path`` imports anywhere in it (a package's ``__init__`` is
    the package itself; ``from . import x`` is the submodule x when there is one)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    known = {module_name(p) for p in files}
    return {module_name(p): imports(p, known) for p in files}


def cycles(edges: dict[str, set[str]], within: tuple[str, ...]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), as sorted lists."""
    nodes = [n for n in edges if n.split(".")[0] in within]
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(n: str) -> None:
        index[n] = low[n] = len(index)
        stack.append(n)
        on_stack.add(n)
        for m in edges[n]:
            if m.split(".")[0] not in within:
                continue
            if m not in index:
                visit(m)
                low[n] = min(low[n], low[m])
            elif m in on_stack:
                low[n] = min(low[n], index[m])
        if low[n] == index[n]:
            group = []
            while True:
                m = stack.pop()
                on_stack.discard(m)
                group.append(m)
                if m == n:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for n in nodes:
        if n not in index:
            visit(n)
    return groups


def test_no_import_cycles_in_the_runtime():
    assert cycles(graph(), ("stream", "engines")) == []


def test_the_graph_finds_a_cycle():
    edges = {"stream.a": {"stream.b"}, "stream.b": {"stream.c"}, "stream.c": {"stream.a"},
             "stream.d": {"stream.a"}}
    assert cycles(edges, ("stream",)) == [["stream.a", "stream.b", "stream.c"]]


def upward(edges: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Imports against the layering.  The lab (``models.lab``, training and evaluation) may
    use ``engines`` to evaluate through the product's engine; nothing in ``models`` uses
    ``stream``."""
    def top(name: str) -> str:
        return name.split(".")[0]

    return {(a, b) for a, targets in edges.items() for b in targets
            if (top(a) == "models" and top(b) == "stream")
            or (top(a) == "models" and top(b) == "engines" and not a.startswith("models.lab"))
            or (top(a) == "engines" and top(b) == "stream")}


def test_dependencies_point_one_way():
    assert upward(graph()) == set()
    assert upward({"models.lab.evaluate": {"engines.select"}, "models.arch": {"engines.base"},
                   "engines.select": {"stream.cli"}}) == {("models.arch", "engines.base"),
                                                         ("engines.select", "stream.cli")}


def test_the_runtime_does_not_import_the_lab():
    """What the product runs (``models`` outside ``models.lab``) needs nothing of the lab: the
    camera fine-tune shares the training loop and noise mix through ``models.training``."""
    edges = graph()
    assert {(a, b) for a, targets in edges.items() for b in targets
            if a.startswith("models") and not a.startswith("models.lab")
            and b.startswith("models.lab")} == set()
