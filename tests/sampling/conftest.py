"""The fixtures of tests/scheduler (business time, jobs, a customer), shared through scheduler_fixtures.py."""

from __future__ import annotations

from scheduler_fixtures import at, customer, jobs  # noqa: F401 - fixtures, found by name
