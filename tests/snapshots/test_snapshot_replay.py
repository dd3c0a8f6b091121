"""Snapshots never change what a replay shows (issue 22) — on SQLite and on PostgreSQL.

Random histories of tickets, complaints and customers are built through the use cases with a
snapshot every 3 events and the aggregate cache off (so every load goes through the snapshot
store); at every version the aggregate as loaded (newest snapshot + the events after it) must
equal the aggregate replayed from its first event, attribute by attribute and type by type.
"""

from __future__ import annotations

import random
import uuid
from typing import Any, Callable

import pytest
from eventsourcing.application import project_aggregate

from domain.errors import DomainError
from ledger.application import CaseLedger
from ledger.bootstrap import build
from ledger.errors import LedgerError
from ledger.snapshots import CODE_KEY, LedgerSnapshot, NOT_COVERED

EVERY = 3


@pytest.fixture
def snap_ledger(env: dict[str, str]):
    app = build({**env, "CASELEDGER_SNAPSHOT_EVERY": str(EVERY), "CASELEDGER_AGGREGATE_CACHE": "0"})
    yield app
    app.close()


def _ticket_moves(rng: random.Random) -> list[tuple[str, Callable[[], dict[str, Any]]]]:
    return [
        ("classify", lambda: {"priority": rng.choice(["normal", "urgent"]), "complexity": rng.choice(["general", "complex"]),
                              "high_risk": rng.random() < 0.3}),
        ("assign", lambda: {"handler": rng.choice(["agent-li", "agent-zhao"]), "team": rng.choice([None, "fixed-line"])}),
        ("respond_first", lambda: {"message": rng.choice([None, "we are on it"])}),
        ("start_work", dict), ("pause_clock", dict), ("resume_clock", dict), ("pause_clock", dict), ("resume_clock", dict),
        ("resolve", lambda: {"resolution": "replaced the modem"}),
        ("review", lambda: {"approved": rng.random() < 0.7}),
        ("feed_back_result", lambda: {"channel": "phone"}),
        ("record_acceptance", lambda: {"accepted": rng.random() < 0.6}),
        ("close", dict), ("reopen", dict),
    ]


def _customer_moves(rng: random.Random) -> list[tuple[str, Callable[[], dict[str, Any]]]]:
    return [
        ("change_tier", lambda: {"tier": rng.choice(["general", "vip"])}),
        ("update_contact", lambda: {"contact": {"phone": f"139{rng.randrange(10**8):08d}"}}),
        ("set_consents", lambda: {"consents": {"marketing": rng.random() < 0.5}}),
    ]


def _random_history(ledger: CaseLedger, ctx, rng: random.Random, kind: str, aggregate_id: Any,
                    moves: list[tuple[str, Callable[[], dict[str, Any]]]], attempts: int) -> int:
    """Try ``attempts`` random commands as one of two team leads (so four-eyes reviews can pass);
    the refused ones are simply not stored."""
    stored = 0
    for _ in range(attempts):
        action, make_args = rng.choice(moves)
        try:
            ledger.act(kind, aggregate_id, action, ctx(rng.choice(["lead-wang", "lead-zhou"]), "team_lead"), make_args())
            stored += 1
        except (DomainError, LedgerError):
            pass
    return stored


def _state(aggregate: Any) -> dict[str, tuple[type, Any]]:
    return {name: (type(value), value) for name, value in vars(aggregate).items() if name != "_pending_events"}


def _assert_every_version_equals_replay(ledger: CaseLedger, kind: str, aggregate_id: Any) -> int:
    uid = uuid.UUID(str(aggregate_id))
    events = list(ledger.events.get(uid))
    for version in range(1, len(events) + 1):
        replayed = project_aggregate(None, events[:version])
        loaded = ledger.get(kind, uid, version=version)
        assert _state(loaded) == _state(replayed), f"{kind} v{version}"
    assert _state(ledger.get(kind, uid)) == _state(project_aggregate(None, events))
    return len(events)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_snapshot_plus_tail_equals_full_replay_for_random_histories(snap_ledger, ctx, seed):
    rng = random.Random(seed)
    customer = snap_ledger.register_customer(ctx(), kind="individual", tier="general", contact={"name": "王五"})
    ticket = snap_ledger.open_ticket(ctx(), customer_id=str(customer.id), channel="phone", summary="no dial tone")
    stored = _random_history(snap_ledger, ctx, rng, "ticket", ticket.id, _ticket_moves(rng), 300)
    _random_history(snap_ledger, ctx, rng, "customer", customer.id, _customer_moves(rng), 12)
    assert stored >= 4 * EVERY, stored  # the history is long enough to have snapshots to start from
    ticket_versions = _assert_every_version_equals_replay(snap_ledger, "ticket", ticket.id)
    customer_versions = _assert_every_version_equals_replay(snap_ledger, "customer", customer.id)
    # Snapshots were really taken (every EVERY events) and so really used by the loads above.
    taken = [s.originator_version for s in snap_ledger.snapshots.get(ticket.id)]
    assert taken == list(range(EVERY, ticket_versions + 1, EVERY))
    assert [s.originator_version for s in snap_ledger.snapshots.get(customer.id)] == \
        list(range(EVERY, customer_versions + 1, EVERY))
    assert all(isinstance(s, LedgerSnapshot) and s.is_current() for s in snap_ledger.snapshots.get(ticket.id))


def test_a_snapshot_from_other_code_is_passed_over(snap_ledger, ctx):
    """A snapshot whose code fingerprint differs (taken before a change to the aggregate) is ignored:
    the aggregate is replayed from its first event, whatever the snapshot says."""
    customer = snap_ledger.register_customer(ctx(), kind="individual", tier="general", contact={})
    ticket = snap_ledger.open_ticket(ctx(), customer_id=str(customer.id), channel="phone")
    snap_ledger.act("ticket", ticket.id, "classify", ctx("lead-wang", "team_lead"),
                    {"priority": "urgent", "complexity": "general", "high_risk": False})  # v2, no snapshot yet
    current = snap_ledger.get("ticket", ticket.id)
    forged = LedgerSnapshot.take(current)
    forged.state["priority"] = "normal"  # what an old version of the code might have folded differently
    forged.state[CODE_KEY] = "0" * 32
    snap_ledger.snapshots.put([forged])
    assert snap_ledger.get("ticket", ticket.id).priority == "urgent"
    honest = LedgerSnapshot.take(current)
    honest.state["priority"] = "normal"  # same fingerprint: a current snapshot is what loads start from
    other = uuid.uuid4()
    assert honest.is_current() and not LedgerSnapshot(originator_id=other, originator_version=2,
                                                      timestamp=forged.timestamp, topic=forged.topic,
                                                      state=forged.state).is_current()


def test_a_failed_snapshot_never_fails_the_command(snap_ledger, ctx, monkeypatch):
    customer = snap_ledger.register_customer(ctx(), kind="individual", tier="general", contact={})
    ticket = snap_ledger.open_ticket(ctx(), customer_id=str(customer.id), channel="phone")

    def broken(*_: Any, **__: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(snap_ledger.snapshots, "put", broken)
    snap_ledger.act("ticket", ticket.id, "classify", ctx("lead-wang", "team_lead"),
                    {"priority": "urgent", "complexity": "general", "high_risk": False})
    snap_ledger.act("ticket", ticket.id, "assign", ctx("lead-wang", "team_lead"),
                    {"handler": "agent-li", "team": None})  # v3: a snapshot is due, and fails
    assert snap_ledger.get("ticket", ticket.id).version == 3
    assert list(snap_ledger.snapshots.get(ticket.id)) == []


def test_snapshots_are_not_in_the_log_and_verify_says_so(env, token_env):
    """Snapshots stay outside the Merkle log (tree size = events), and `caseledger verify` says it
    checked events only."""
    from click.testing import CliRunner

    from cli.main import main
    from ledger.bootstrap import transparency_log
    from services.tokens import system_context

    env = {**env, "CASELEDGER_SNAPSHOT_EVERY": "3"}
    runner = CliRunner()
    assert runner.invoke(main, ["db", "init"], env=env).exit_code == 0
    ledger = build(env, create=False)
    try:
        ctx = system_context("lead-wang", "team_lead")
        customer = ledger.register_customer(ctx, kind="individual", tier="general", contact={})
        for tier in ("vip", "general", "vip", "general", "vip"):
            ledger.act("customer", customer.id, "change_tier", system_context("lead-wang", "team_lead"), {"tier": tier})
        assert [s.originator_version for s in ledger.snapshots.get(customer.id)] == [3, 6]
        events = ledger.recorder.max_notification_id()
        assert transparency_log(ledger, env).size() == events  # one leaf per event, none per snapshot
    finally:
        ledger.close()
    env = token_env("administrator", base=env)
    assert runner.invoke(main, ["checkpoint"], env=env).exit_code == 0
    verified = runner.invoke(main, ["verify"], env=env)
    assert verified.exit_code == 0, verified.output
    assert f"OK {events + 1} leaves" in verified.output  # + the token issued for the command line
    assert NOT_COVERED.split("(")[0].strip() in verified.output.replace("\n", " ")
