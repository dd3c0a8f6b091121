"""Exports by business-time period and case exports with their related records (issue #20 item 5),
verified offline like every bundle. Both backends."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from domain.context import Context
from ledger.bootstrap import transparency_log
from ledger.integrity.bundle import verify_bundle
from ledger.integrity.trust import TrustSet
from ledger.keys import LogKeys
from ledger.settings import Settings
from scheduler.runner import run_job
from services.export import ExportError, Scope, write_bundle

CST = timezone(timedelta(hours=8))
T0 = datetime(2025, 9, 1, 9, 0, tzinfo=CST)
NOW = datetime(2025, 10, 1, tzinfo=timezone.utc)


def at(minutes: float, actor: str = "agent-li", role: str = "agent", reason: str | None = None) -> Context:
    return Context(actor_id=actor, actor_role=role, occurred_at=T0 + timedelta(minutes=minutes),
                   request_id=uuid.uuid4().hex, reason=reason)


def lines(out) -> list[dict]:
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


@pytest.fixture
def world(ledger, env):
    """A customer; a contact registered and routed, and a ticket opened from it that breaches its
    first-response clock (SLA job) and so gets a finding (compliance audit) and a legal hold; an
    unrelated ticket of the same customer; a second customer with a ticket."""
    from services.retention import build_retention

    LogKeys.from_settings(Settings.from_environ(env)).init()
    customer = str(ledger.register_customer(at(0), kind="individual", tier="vip", contact={"name": "孙八"}).id)
    contact = str(ledger.receive_interaction(at(1), channel="phone", direction="inbound", customer_id=customer).id)
    ledger.act("interaction", contact, "register", at(2), {"agent_id": "agent-li"})
    ledger.act("interaction", contact, "route", at(3), {"queue": "broadband"})
    ticket = str(ledger.open_ticket(at(4), customer_id=customer, channel="phone", interaction_id=contact).id)
    other = str(ledger.open_ticket(at(5), customer_id=customer, channel="web").id)
    stranger = str(ledger.register_customer(at(6), kind="individual", tier="general", contact={}).id)
    ledger.open_ticket(at(7), customer_id=stranger, channel="web")
    assert run_job(ledger, "sla_clocks", T0 + timedelta(minutes=40), settings=env).status == "finished"
    assert run_job(ledger, "compliance_audit", T0 + timedelta(minutes=41), settings=env).status == "finished"
    retention = build_retention(ledger, env)
    try:
        hold = str(retention.place_hold(at(50, "records-chen", "records_manager", "litigation"), target_kind="ticket",
                                        target_id=ticket, authority="court order 1").id)
    finally:
        retention.close()
    return {"customer": customer, "contact": contact, "ticket": ticket, "other": other, "hold": hold,
            "log": transparency_log(ledger, env), "trust": TrustSet([LogKeys.from_settings(
                Settings.from_environ(env)).verifier_text()])}


def all_events(ledger) -> list:
    found, after = [], 0
    while page := ledger.log(after=after, limit=500):
        found += [e for _, e in page]
        after = page[-1][0]
    return found


def test_period_export_holds_exactly_the_events_of_the_period(ledger, world, tmp_path):
    start, end = T0 + timedelta(minutes=4), T0 + timedelta(minutes=41)
    out = tmp_path / "period"
    manifest = write_bundle(world["log"], ledger, Scope("period", from_time=start, to_time=end), out, NOW)
    expected = sorted((str(e.originator_id), e.originator_version) for e in all_events(ledger)
                      if "occurred_at" in (e.meta or {}) and start <= datetime.fromisoformat(e.meta["occurred_at"]) < end)
    found = sorted((row["originator_id"], row["originator_version"]) for row in lines(out))
    assert found == expected and len(found) == manifest["events"] == len(manifest["leaf_list"])
    assert world["ticket"] in {oid for oid, _ in found} and world["customer"] not in {oid for oid, _ in found}
    summary = verify_bundle(out, world["trust"])
    assert summary["events"] == len(expected) and summary["scope"]["kind"] == "period"


def test_period_needs_both_ends_in_order():
    with pytest.raises(ExportError, match="needs from and to"):
        Scope("period", from_time=T0)
    with pytest.raises(ExportError, match="before to"):
        Scope("period", from_time=T0, to_time=T0)


def test_case_export_includes_its_related_records(ledger, world, tmp_path):
    out = tmp_path / "case"
    manifest = write_bundle(world["log"], ledger, Scope("ticket", world["ticket"]), out, NOW)
    related = manifest["related"]
    kinds = sorted(related.values())
    assert related[world["contact"]] == "interaction" and related[world["hold"]] == "hold"
    assert "sla_breach" in kinds and "finding" in kinds  # the breach, and the finding raised about it
    assert world["other"] not in related and world["customer"] not in related  # never the customer's other cases
    assert set(manifest["aggregates"]) == {world["ticket"], *related}
    assert {row["originator_id"] for row in lines(out)} == set(manifest["aggregates"])
    assert verify_bundle(out, world["trust"])["events"] == manifest["events"]
