"""The layers of the code, kept by CI: imports point down, never in a circle, and modules stay small.

Layers, lowest first: ``domain`` → ``ledger`` (the write-side core) → ``projections`` (read models)
→ ``services`` (use cases that need store and views) → entry points ``api`` and ``scheduler`` →
``cli`` (which may start either) → ``bench``. See docs/architecture.md.
"""

from __future__ import annotations

import ast

import pytest
from import_graph import (
    LAYERS,
    ROOT,
    Import,
    cycles,
    imports_of,
    layer_violations,
    module_graph,
    project_imports,
    project_modules,
)

MAX_LINES = 400


@pytest.fixture(scope="module")
def modules():
    return project_modules()


@pytest.fixture(scope="module")
def imports(modules):
    return project_imports(modules)


def test_every_layer_exists_and_holds_code(modules):
    packages = {name.split(".")[0] for name in modules}
    assert packages == set(LAYERS)
    assert len(modules) > 100  # the scan found the project, not an empty folder


def test_no_import_points_up_or_sideways(modules, imports):
    assert layer_violations(imports, modules) == []


def test_no_import_cycle_between_modules(modules, imports):
    assert cycles(module_graph(imports, modules)) == []


def test_the_check_sees_a_wrong_way_import(modules, imports):
    # The adversary's edits, one at a time: each must be reported, and only it.
    wrong = {
        "ledger.application": "from api import create_app\n",  # the core reaching up to HTTP
        "domain.ticket": "def f():\n    from ledger.settings import Settings\n",  # a lazy import counts too
        "projections.cases": "from ledger.application import CaseLedger\n",  # read models writing events
        "api.app": "import scheduler.jobs\n",  # one entry point using another
        "console.app": "from api.auth import current_caller\n",  # the console reaching into the API that mounts it
        "services.sla": "import flask\n",  # HTTP below the entry points
        "domain.case": "import psycopg\n",  # infrastructure in the domain
        "scheduler.jobs": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cli.main import main\n",
    }
    for module, source in wrong.items():
        added = list(imports_of(module, source))
        found = layer_violations(imports + added, modules)
        assert found and all(problem.startswith(f"{module}:") for problem in found), (module, found)


def test_the_check_sees_a_cycle(modules, imports):
    relative = list(imports_of("projections.store", "from .cases import TicketList\n"))
    assert relative[0] == Import("projections.store", "projections.cases", 1)
    found = cycles(module_graph(imports + relative, modules))
    assert found and "projections.store" in found[0] and "projections.cases" in found[0]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_over_the_size_limit(modules):
    big = {name: n for name, path in modules.items()
           if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert big == {}


def _environment_reads(tree: ast.AST) -> list[int]:
    """Lines that read ``os.environ`` / ``os.getenv`` (assigning one of its items is not reading)."""
    writes = {id(node.value) for node in ast.walk(tree)
              if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store)}
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv", "environb", "getenvb"} \
                and isinstance(node.value, ast.Name) and node.value.id == "os" and id(node) not in writes:
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and any(
                alias.name in {"environ", "getenv"} for alias in node.names):
            lines.append(node.lineno)
    return lines


def test_only_the_settings_module_reads_the_environment(modules):
    readers = {name: lines for name, path in modules.items() if name != "ledger.settings"
               and (lines := _environment_reads(ast.parse(path.read_text(encoding="utf-8"))))}
    assert readers == {}
    assert _environment_reads(ast.parse((ROOT / "ledger" / "settings.py").read_text(encoding="utf-8")))


def test_the_environment_check_sees_every_way_of_reading():
    for source in ("import os\nx = os.environ.get('A')\n", "import os\nx = os.getenv('A')\n",
                   "from os import environ\n", "import os\nx = dict(os.environ)\n", "import os\nx = os.environ['A']\n"):
        assert _environment_reads(ast.parse(source)), source
    assert _environment_reads(ast.parse("import os\nos.environ['A'] = 'b'\n")) == []
