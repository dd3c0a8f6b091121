"""Processes starting at once on a new database (gunicorn workers, a scheduler, a projection runner)
all create the tables they need; on PostgreSQL two concurrent ``CREATE TABLE IF NOT EXISTS`` of one
table can fail on the catalog, so every creator takes one lock first."""

from __future__ import annotations

import threading
import traceback

from ledger.bootstrap import build
from ledger.idempotency import IdempotencyStore
from projections.catalog import runner_for


def test_ledgers_started_at_once_on_a_new_database_all_come_up(env):
    starting, errors, started = threading.Barrier(6), [], []

    def start() -> None:
        try:
            starting.wait()
            ledger = build(env)
            IdempotencyStore(ledger)
            runner_for(ledger).close()
            started.append(ledger)
        except Exception as e:  # noqa: BLE001 - collected and reported below
            errors.append("".join(traceback.format_exception(e)))

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert not errors, errors[0]
        assert len(started) == 6
    finally:
        for ledger in started:
            ledger.close()
