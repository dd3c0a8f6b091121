"""Fault test: SIGKILL a real ``caseledger projections run`` mid-way, restart it, and check the result
equals an uninterrupted rebuild and that no event was applied twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from projections.catalog import NAMES, runner_for
from projections.event_counts import COUNT_TABLE
from projections.store import TRACKING_TABLE, ViewDatabase

pytestmark = pytest.mark.integration

CASELEDGER = str(Path(sys.executable).with_name("caseledger"))


def load_events(ledger, at) -> int:
    customers = [str(ledger.register_customer(at(n), kind="individual", tier="general", contact={}).id)
                 for n in range(20)]
    records = [(at(30 + n // 10), {"channel": "phone", "direction": "inbound", "customer_id": customers[n % 20],
                                   "agent_id": f"agent-{n % 7}", "queue": ["broadband", "mobile"][n % 2],
                                   "external_ref": f"crm-{n}"}) for n in range(900)]
    ledger.import_interactions(records, batch_size=300)
    for n in range(60):
        ticket = ledger.open_ticket(at(200 + n), customer_id=customers[n % 20], channel="web")
        ledger.act("ticket", ticket.id, "classify", at(300 + n), {"priority": "normal", "complexity": "general",
                                                                   "high_risk": False})
    return ledger.recorder.max_notification_id()


def positions(db: ViewDatabase) -> dict[str, int]:
    try:
        with db.reading() as cur:
            return dict(cur.execute(f"SELECT name, position FROM {TRACKING_TABLE}").fetchall())
    except Exception:  # noqa: BLE001 - the runner has not created its tables yet
        return {}


def start(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([CASELEDGER, "projections", "run", "--batch-size", "25", "--poll", "0.1",
                             "--pause-between-batches", "0.02"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.03)


def test_sigkill_mid_way_then_restart_equals_a_rebuild(ledger, env, at):
    head = load_events(ledger, at)
    assert head > 2500
    db = ViewDatabase.for_ledger(ledger)
    proc_env = {**os.environ, **env}

    first = start(proc_env)
    wait_for(lambda: len(positions(db)) == len(NAMES) and min(positions(db).values()) >= head // 3)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    killed_at = positions(db)
    assert min(killed_at.values()) < head, "the runner finished before it could be killed"

    second = start(proc_env)
    wait_for(lambda: set(positions(db).values()) == {head})
    second.send_signal(signal.SIGTERM)
    out, err = second.communicate(timeout=15)
    assert second.returncode == 0, err

    runner = runner_for(ledger)
    with runner.db.reading() as cur:
        applied = int(cur.execute(f"SELECT SUM(events) FROM {COUNT_TABLE.name}").fetchone()[0])
    notifications = sum(1 for _ in _all_notifications(ledger))
    assert applied == notifications  # every event exactly once, across the crash
    resumed = runner.digests()
    runner.rebuild()
    assert runner.digests() == resumed
    runner.close()
    db.close()


def _all_notifications(ledger):
    after = 0
    while page := ledger.recorder.select_notifications(start=after + 1, limit=1000):
        yield from page
        after = page[-1].id
