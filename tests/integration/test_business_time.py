"""Business time never runs ahead: no event is stored dated later than the wall clock plus the
allowed skew (CASELEDGER_CLOCK_SKEW_SECONDS), whoever saves it — a command, an import, a service,
the scheduler, the command line. The ledger refuses it with rule ``time.future`` and stores nothing
of that save."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from domain.context import Context
from ledger.bootstrap import build
from ledger.errors import BusinessTimeAhead
from scheduler.runner import run_job
from services.retention import build_retention

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=timezone.utc)  # the fake wall clock of most tests here


def at(moment: datetime, actor: str = "agent-li", role: str = "agent", reason: str | None = None) -> Context:
    return Context(actor, role, moment, uuid.uuid4().hex, reason)


def register(ledger, moment: datetime):  # noqa: ANN001, ANN201
    return ledger.register_customer(at(moment), kind="individual", tier="general", contact={"name": "王五"})


def test_refused_beyond_the_skew_naming_rule_time_and_skew(ledger, wall_clock):
    wall_clock.now = NOW
    before = ledger.recorder.max_notification_id()
    ahead = NOW + timedelta(seconds=121)
    with pytest.raises(BusinessTimeAhead) as refused:
        register(ledger, ahead)
    assert refused.value.rule == "time.future"
    message = str(refused.value)
    assert ahead.isoformat() in message and NOW.isoformat() in message and "skew of 120 s" in message
    assert ledger.recorder.max_notification_id() == before
    register(ledger, NOW + timedelta(seconds=120))  # within the skew: a caller's clock may be a little fast


def test_the_skew_is_a_setting(env):
    strict = build({**env, "CASELEDGER_CLOCK_SKEW_SECONDS": "0"}, clock=lambda: NOW)
    try:
        assert strict.clock_skew == timedelta(0)
        with pytest.raises(BusinessTimeAhead):
            register(strict, NOW + timedelta(seconds=1))
        register(strict, NOW)
    finally:
        strict.close()


def test_every_way_in_is_checked(ledger, env, wall_clock):
    wall_clock.now = NOW
    customer = str(register(ledger, NOW - timedelta(days=1)).id)
    ahead = NOW + timedelta(hours=1)

    # A command on an existing record.
    with pytest.raises(BusinessTimeAhead):
        ledger.act("customer", customer, "change_tier", at(ahead), {"tier": "vip"})
    # An import: refused before its first batch is saved, and reported by the dry check.
    records = [(at(NOW - timedelta(hours=1)), {"channel": "email", "direction": "inbound", "external_ref": "x-1"}),
               (at(ahead), {"channel": "email", "direction": "inbound", "external_ref": "x-2"})]
    assert isinstance(ledger.check_interactions(records)[1], BusinessTimeAhead)
    before = ledger.recorder.max_notification_id()
    with pytest.raises(BusinessTimeAhead):
        ledger.import_interactions(records, batch_size=1)
    assert ledger.recorder.max_notification_id() == before
    # A service (retention: a legal hold).
    retention = build_retention(ledger, env)
    try:
        with pytest.raises(BusinessTimeAhead):
            retention.place_hold(at(ahead, "records-chen", "records_manager", reason="litigation"),
                                 target_kind="customer", target_id=customer, authority="court")
    finally:
        retention.close()
    # The scheduler: a job run as of a time ahead.
    with pytest.raises(BusinessTimeAhead):
        run_job(ledger, "sla_clocks", ahead, settings=env)
    assert ledger.recorder.max_notification_id() == before


def test_the_command_line_says_so_in_one_line(cli, env, token_env):
    ahead = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    done = cli("jobs", "run", "sla_clocks", "--as-of", ahead, env=token_env("administrator"))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith(f"error: business time {ahead} is later than the wall clock")
    assert "CASELEDGER_CLOCK_SKEW_SECONDS" in lines[0]
