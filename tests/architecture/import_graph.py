"""The project's import graph, read from the source with ``ast`` (nothing is imported or run).

Every import counts: at the top of a module, inside a function (a lazy import is still a
dependency) and under ``if TYPE_CHECKING`` (a cycle for the type checker is a cycle for the reader).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping

ROOT = Path(__file__).resolve().parents[2]

#: Layer of each top-level package: a module may import its own package and lower layers only.
#: Packages of one rank (the API and the scheduler) may not import each other.
LAYERS: Mapping[str, int] = {"domain": 0, "ledger": 1, "projections": 2, "services": 3, "api": 4, "scheduler": 4,
                             "console": 4, "cli": 5, "bench": 6}
#: The one import allowed between entry points of one rank: the API app mounts the web console
#: (``console.mount``); the console itself never imports ``api`` (it uses the layers below).
MOUNTS = frozenset({("api", "console")})
#: What read models may use of the write-side core: database access (and how to reach the database the
#: ledger's URL names), nothing that writes events.
PROJECTIONS_MAY_USE = frozenset({"ledger.sqlaccess", "ledger.pgurl"})
#: Libraries that belong to the entry points only (HTTP, command line, scheduling, serving).
ENTRY_POINT_LIBRARIES = frozenset({"flask", "flask_smorest", "marshmallow", "werkzeug", "click", "rich",
                                   "gunicorn", "apscheduler", "honcho", "apispec", "webargs"})
#: The domain's only third-party import: eventsourcing's aggregate and event decorator.
DOMAIN_MAY_USE = frozenset({"eventsourcing.domain"})


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, dotted
    target: str  # the imported module as written, resolved to an absolute dotted name
    line: int


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    modules = {}
    for package in LAYERS:
        for path in sorted((root / package).rglob("*.py")):
            modules[module_name(path, root)] = path
    return modules


def imports_of(module: str, source: str, is_package: bool = False) -> Iterator[Import]:
    """Every import in ``source``, with relative imports made absolute."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[:len(package) - (node.level - 1)]
                base = ".".join(package + ([node.module] if node.module else []))
            yield Import(module, base, node.lineno)
            for alias in node.names:  # ``from pkg import module`` imports that module
                yield Import(module, f"{base}.{alias.name}", node.lineno)


def project_imports(modules: Mapping[str, Path]) -> list[Import]:
    found = []
    for module, path in modules.items():
        for imp in imports_of(module, path.read_text(encoding="utf-8"), path.name == "__init__.py"):
            found.append(imp)
    return found


def resolve(target: str, modules: Iterable[str]) -> str | None:
    """The project module ``target`` names (or lies in), None for anything outside the project."""
    known = set(modules)
    parts = target.split(".")
    while parts:
        name = ".".join(parts)
        if name in known:
            return name
        parts.pop()
    return None


def module_graph(imports: Iterable[Import], modules: Iterable[str]) -> dict[str, set[str]]:
    names = set(modules)
    graph: dict[str, set[str]] = {name: set() for name in names}
    for imp in imports:
        target = resolve(imp.target, names)
        if target is not None and target != imp.source and not _is_ancestor(target, imp.source):
            graph[imp.source].add(target)
    return graph


def _is_ancestor(package: str, module: str) -> bool:
    """``import a.b.c`` runs ``a/__init__`` first: that is the package itself, not a dependency to judge."""
    return module.startswith(package + ".")


def layer_violations(imports: Iterable[Import], modules: Iterable[str]) -> list[str]:
    """Every import that points up or sideways, or reaches into what a layer may not use."""
    names = set(modules)
    problems = []
    for imp in imports:
        own = imp.source.split(".")[0]
        target = resolve(imp.target, names)
        top = imp.target.split(".")[0]
        where = f"{imp.source}:{imp.line} imports {imp.target}"
        if target is None:
            if top in ENTRY_POINT_LIBRARIES and LAYERS[own] < LAYERS["api"]:
                problems.append(f"{where}: {top} belongs to the entry points")
            if own == "domain" and top not in _STDLIB and not any(
                    imp.target == allowed or imp.target.startswith(allowed + ".") for allowed in DOMAIN_MAY_USE):
                problems.append(f"{where}: the domain uses the standard library and eventsourcing.domain only")
            continue
        other = target.split(".")[0]
        if other == own:
            continue
        if LAYERS[other] > LAYERS[own]:
            problems.append(f"{where}: {own} is below {other}")
        elif LAYERS[other] == LAYERS[own] and (own, other) not in MOUNTS:
            problems.append(f"{where}: {own} and {other} are both entry points")
        elif own == "projections" and other == "ledger" and target not in PROJECTIONS_MAY_USE:
            problems.append(f"{where}: read models use only {', '.join(sorted(PROJECTIONS_MAY_USE))} of the core")
    return problems


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
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


_STDLIB = frozenset(__import__("sys").stdlib_module_names) | {"__future__"}
