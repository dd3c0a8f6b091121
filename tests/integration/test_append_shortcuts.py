"""The append path's shortcuts (issue 22) answer exactly what the code they stand in for answers:
the JSON encoder made once, the remembered policy in force, the business-time deadline, and the
collecting of a save's events and the replaying of an aggregate's without runtime Protocol checks."""

from __future__ import annotations

import hashlib
import inspect
import json
import random
import uuid
import zoneinfo
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from eventsourcing.application import Application, ProcessingEvent, project_aggregate
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    UUIDAsHex,
)

from domain.context import Context
from domain.errors import PolicyError
from domain.interaction import Interaction
from domain.policy import PolicyBook
from ledger.business_time import Deadline
from ledger.collecting import CollectedEvents
from ledger.errors import BusinessTimeAhead
from ledger.json_encoding import OneShotEncoder
from ledger.policy_in_force import PoliciesInForce, _same_local_dates
from ledger.snapshots import project_events


def test_one_shot_encoder_writes_what_json_writes() -> None:
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DatetimeAsISO(), DecimalAsStr()):
        transcoder.register(transcoding)
    fast = OneShotEncoder.like(transcoder.encoder)
    values = [{"id": uuid.uuid4(), "at": datetime.now(UTC), "n": Decimal("1.10"), 3: "int key",
               "x": [1, 2.5, float("nan"), float("inf"), None, True, "宽带\u2028\"\\\x00"], "nested": {"b": {}, "a": []}},
              "text", 5, [], {"big": 1e300, "neg": -0.0}]
    for value in values:
        assert fast.encode(value) == transcoder.encoder.encode(value)
    sorted_compact = {"ensure_ascii": False, "sort_keys": True, "separators": (",", ":")}
    for value in ({"b": "宽带", "a": {"y": [1], "x": None}}, {}):
        assert OneShotEncoder(**sorted_compact).encode(value) == json.JSONEncoder(**sorted_compact).encode(value)
    with pytest.raises(TypeError):
        OneShotEncoder(**sorted_compact).encode({"a": object()})


def test_policy_in_force_remembered_answers_as_the_book(policies: PolicyBook) -> None:
    remembered, rng = PoliciesInForce(policies), random.Random(3)
    names = sorted({p.name for p in policies.policies.values()} | set(policies.policies))
    zones = [timezone(timedelta(hours=h)) for h in (-5, 0, 8, 14, -12)] + [
        UTC, zoneinfo.ZoneInfo("America/New_York"), zoneinfo.ZoneInfo("Asia/Shanghai")]
    base = datetime(2024, 12, 25, tzinfo=UTC)
    for i in range(20_000):
        name = rng.choice(names) if i % 50 == 0 else policies.default_name
        days = rng.randrange(0, 400) if i % 4 == 0 else 372
        at = (base + timedelta(days=days, seconds=rng.randrange(-200_000, 200_000))).astimezone(rng.choice(zones))
        if isinstance(at.tzinfo, timezone) and rng.random() < 0.5:  # an equal offset in another object
            at = at.replace(tzinfo=timezone(at.utcoffset()))
        try:
            expected = policies.in_force(at, name)
        except PolicyError:
            with pytest.raises(PolicyError):
                remembered.at(at, name)
            continue
        assert remembered.at(at, name) is expected


def test_same_local_dates_span_keeps_every_date() -> None:
    rng = random.Random(1)
    names = ["America/New_York", "Asia/Beirut", "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Apia",
             "Asia/Shanghai", "America/Havana", "Europe/London", "Asia/Kathmandu", "America/Santiago"]
    for _ in range(5_000):
        zones = tuple(zoneinfo.ZoneInfo(z) for z in rng.sample(names, rng.choice([1, 2, 3])))
        at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(0, 70 * 365 * 86400))
        bounds = _same_local_dates(at, zones)
        if bounds is None:
            continue
        start, end = bounds
        assert start <= at < end
        dates = [at.astimezone(z).date() for z in zones]
        for t in [start, end - timedelta(microseconds=1)] + [start + (end - start) * rng.random() for _ in range(4)]:
            assert [t.astimezone(z).date() for z in zones] == dates


def test_deadline_refuses_exactly_the_times_after_it() -> None:
    rng = random.Random(5)
    now, skew = datetime(2025, 9, 1, 1, 0, tzinfo=UTC), timedelta(seconds=120)
    latest = now + skew
    zones = [timezone(timedelta(hours=h, minutes=m)) for h, m in ((8, 0), (-5, 0), (5, 30), (0, 0), (-3, -30))] + [
        UTC, zoneinfo.ZoneInfo("Asia/Shanghai")]
    for _ in range(2_000):
        deadline = Deadline(now, skew)
        for _ in range(rng.randint(1, 6)):
            at = latest + timedelta(microseconds=rng.choice([-1, 0, 1, 10**6, -10**6, rng.randint(-10**10, 10**10)]))
            at = at.astimezone(rng.choice(zones))
            for check, value in ((deadline.require, at), (deadline.require_text, at.isoformat())):
                if at > latest:
                    with pytest.raises(BusinessTimeAhead) as refused:
                        check(value)
                    assert refused.value.occurred_at == at
                else:
                    check(value)
    deadline = Deadline(now, skew)
    deadline.require_text("2025-08-01T00:00:00+08:00")
    for text, error in (("2025-09-01T09:00+08:00+08:00", ValueError), ("garbage+08:00", ValueError),
                        ("2025-09-01", TypeError)):  # as datetime.fromisoformat and comparing would fail
        with pytest.raises(error):
            deadline.require_text(text)


def _interaction(policies: PolicyBook) -> Interaction:
    ctx = Context("agent-li", "agent", datetime(2025, 9, 1, 9, tzinfo=timezone(timedelta(hours=8))), "r1")
    policy = policies.in_force(ctx.occurred_at)
    interaction = Interaction.receive(id=uuid.uuid4(), channel="phone", direction="inbound", policy=policy, ctx=ctx,
                                      content="宽带断了")
    interaction.register(agent_id="agent-li", policy=policy, ctx=ctx)
    return interaction


def test_collected_events_are_eventsourcings(policies: PolicyBook) -> None:
    def collect(kind: type[ProcessingEvent]) -> ProcessingEvent:
        first, second = _interaction(policies), _interaction(policies)
        loose = _interaction(policies).collect_events()[0]  # an event saved as such
        collected = kind()
        collected.collect_events(first, None, loose, second, claim="x")
        return collected

    ours, theirs = collect(CollectedEvents), collect(ProcessingEvent)
    assert [(type(e), e.originator_version) for e in ours.events] == [(type(e), e.originator_version) for e in theirs.events]
    assert [type(a) for a in ours.aggregates.values()] == [type(a) for a in theirs.aggregates.values()]
    assert ours.saved_kwargs == theirs.saved_kwargs == {"claim": "x"}


def test_case_ledger_save_follows_eventsourcings() -> None:
    """CaseLedger.save is a copy of eventsourcing's Application.save with another collector: if the
    library's changes, look at ours again (then record the new digest here)."""
    source = inspect.getsource(Application.save)
    assert hashlib.sha256(source.encode()).hexdigest() == "4e9747d14b8fd046df1b9b8ce688be89030978de0c04a632e6a7ec783dc7c5cc"


def test_project_events_is_eventsourcings_projector(policies: PolicyBook) -> None:
    events = _interaction(policies).collect_events()
    ours, theirs = project_events(None, events), project_aggregate(None, events)
    assert vars(ours) == vars(theirs)
    with pytest.raises(AssertionError):
        project_events(None, [object()])
