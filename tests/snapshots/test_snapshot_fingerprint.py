"""A snapshot is trusted only while the code that folds events is unchanged — all of it: the
aggregate's module and every helper module of its package (issue 22)."""

from __future__ import annotations

import importlib
import sys

from ledger.snapshots import code_fingerprint


def test_the_fingerprint_changes_with_any_module_of_the_aggregates_package(tmp_path, monkeypatch):
    package = tmp_path / "fpdemo"
    package.mkdir()
    (package / "__init__.py").write_text("from fpdemo.helpers import fold\n\nclass Case:\n    status = fold('x')\n")
    (package / "helpers.py").write_text("def fold(value):\n    return value\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("fpdemo")
    try:
        before = code_fingerprint(module.Case)
        assert code_fingerprint(module.Case) == before  # stable within a deployment
        (package / "helpers.py").write_text("def fold(value):\n    return value.upper()\n")  # a helper changes
        code_fingerprint.cache_clear()
        assert code_fingerprint(module.Case) != before
    finally:
        code_fingerprint.cache_clear()
        for name in [n for n in sys.modules if n == "fpdemo" or n.startswith("fpdemo.")]:
            del sys.modules[name]


def test_aggregates_of_one_package_differ_by_topic_and_ignore_eventsourcing():
    from domain.customer import Customer
    from domain.ticket import Ticket

    assert code_fingerprint(Ticket) != code_fingerprint(Customer)
    assert len(code_fingerprint(Ticket)) == 32
