"""The fixtures of tests/scheduler (business time, jobs, a customer), loaded by path once for the folders
that reuse them (tests/calendar, tests/compliance, tests/findings, tests/sampling): test folders are not
packages. Their conftests import these names; pytest puts this folder (that of the root conftest) on
``sys.path``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_SCHEDULER_TESTS = Path(__file__).parent / "scheduler"
sys.path.insert(0, str(_SCHEDULER_TESTS))  # sched_support
_spec = importlib.util.spec_from_file_location("scheduler_test_fixtures", _SCHEDULER_TESTS / "conftest.py")
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)
at, jobs, customer = _fixtures.at, _fixtures.jobs, _fixtures.customer
