"""The audit's business-time rule reads every event of every kind of record, and judges the lead of
business time over recording time by the ledger's clock skew."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from uuid import uuid4

from eventsourcing.domain import CanMutateAggregate

from domain.event_rules import RECORD_KINDS, STANDALONE_EVENTS, beyond_skew, standalone_suspicions
from ledger.application import KINDS

RECORDED = datetime(2026, 6, 1, 9, 0, tzinfo=timezone.utc)


def test_every_kind_the_ledger_stores_is_read_but_findings():
    assert RECORD_KINDS == {kind: cls for kind, cls in KINDS.items() if kind != "finding"}
    for cls in RECORD_KINDS.values():
        events = {v.__qualname__ for v in vars(cls).values()
                  if isinstance(v, type) and issubclass(v, CanMutateAggregate)}
        assert events and events <= STANDALONE_EVENTS


def stored(ahead: timedelta, name: str = "Registered") -> object:
    cls = type(name, (), {"__qualname__": f"Customer.{name}"})
    event = cls()
    event.__dict__.update(originator_id=uuid4(), originator_version=1, timestamp=RECORDED,
                          meta={"occurred_at": (RECORDED + ahead).isoformat(), "policy": "sop-2025@1"})
    return event


def test_a_lead_is_suspected_at_once_and_raised_beyond_the_skew_only():
    assert standalone_suspicions(stored(timedelta(0))) == []
    assert standalone_suspicions(stored(-timedelta(hours=1))) == []
    [minute] = standalone_suspicions(stored(timedelta(minutes=1)))
    assert (minute.rule, minute.subject_kind, minute.due_at, minute.discriminator) == \
        ("business_time_ahead", "customer", RECORDED, "v1")
    assert beyond_skew(minute, timedelta(minutes=2)) is None
    raised = beyond_skew(minute, timedelta(seconds=30))
    assert raised.facts == {**minute.facts, "skew_seconds": 30} and raised.finding_id == minute.finding_id
    other = SimpleNamespace(rule="sla_breach")
    assert beyond_skew(other, timedelta(0)) is other
