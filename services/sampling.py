"""Drawing inspection samples and opening audit engagements (issue 20).

The population of a sample comes from the case lists (``projections.cases``: ``rm_ticket_list``,
``rm_complaint_list``), caught up first, filtered by the criteria — type (ticket, complaint), team,
agent (the handler, else a ticket's first-contact owner), channel and period (received / accepted
between ``from`` and ``to``) — and drawn by ``domain.sampling.draw_cases`` with the given seed, or a
new random one that the sample records. :func:`population` is public so anyone can check a draw:
the same criteria over the same log give the same population digest and, with the seed, the same
cases (``redraw``).
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any, Mapping
from uuid import uuid4

from domain.audit import AuditEngagement
from domain.context import Context
from domain.sampling import Sample, draw_cases
from projections.cases import COMPLAINT_TABLE, TICKET_TABLE, ComplaintList, TicketList
from projections.runtime import ProjectionRunner
from projections.timeutil import stamp

#: Per case type: its table, id column, time column, and the columns of team, agent and channel.
_SOURCES = {
    "ticket": (TICKET_TABLE, "ticket_id", "received_at", "team", "COALESCE(handler, first_contact_owner)", "channel"),
    "complaint": (COMPLAINT_TABLE, "complaint_id", "accepted_at", "NULL", "handler", "channel"),
}
CRITERIA = ("type", "team", "agent", "channel", "from", "to")
#: Seeds stay below 2**48: exact in JSON and in every client's numbers.
SEED_BITS = 48


def population(ledger: Any, criteria: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The cases matching ``criteria`` (each a list of allowed values, or ``from`` / ``to`` times): one
    dict per case with its id and the sampling dimensions."""
    runner = ProjectionRunner(ledger, [TicketList(ledger), ComplaintList(ledger)])
    try:
        runner.ensure_tables()
        runner.catch_up()
        out = []
        with runner.db.reading() as cur:
            for kind in criteria.get("type") or sorted(_SOURCES):
                table, key, at, team, agent, channel = _SOURCES[kind]
                where, params = ["1 = 1"], []
                for name, column in (("team", team), ("agent", agent), ("channel", channel)):
                    if criteria.get(name):
                        where.append(f"{column} IN ({', '.join('?' for _ in criteria[name])})")
                        params += [str(v) for v in criteria[name]]
                if criteria.get("from"):
                    where.append(f"{at} >= ?")
                    params.append(stamp(criteria["from"]))
                if criteria.get("to"):
                    where.append(f"{at} < ?")
                    params.append(stamp(criteria["to"]))
                rows = cur.execute(f"SELECT {key}, {team}, {agent}, {channel} FROM {table.name} "
                                   f"WHERE {' AND '.join(where)}", params).fetchall()
                out += [{"case_id": r[0], "type": kind, "team": r[1], "agent": r[2], "channel": r[3]} for r in rows]
        return out
    finally:
        runner.close()


def _strata(cases: list[dict[str, Any]], stratify_by: str | None) -> list[tuple[str, Any]]:
    return [(c["case_id"], c.get(stratify_by) if stratify_by else None) for c in cases]


def _criteria_record(criteria: Mapping[str, Any]) -> dict[str, Any]:
    """The criteria as the sample's event stores them (lists sorted, times as ISO text)."""
    out: dict[str, Any] = {}
    for name in CRITERIA:
        value = criteria.get(name)
        if value:
            out[name] = value.isoformat() if isinstance(value, datetime) else sorted(str(v) for v in value)
    return out


def draw_sample(ledger: Any, ctx: Context, criteria: Mapping[str, Any], size: int, *, seed: int | None = None,
                stratify_by: str | None = None) -> Sample:
    """Draw and record a sample (random, or stratified by one dimension: ``size`` cases per stratum)."""
    unknown = set(criteria) - set(CRITERIA)
    if unknown or set(criteria.get("type") or ()) - set(_SOURCES):
        from domain.errors import InvalidValue

        raise InvalidValue(f"sample criteria are {', '.join(CRITERIA)}; types ticket, complaint", rule="sample.criteria")
    cases = population(ledger, criteria)
    sample = Sample.draw(id=uuid4(), population=_strata(cases, stratify_by), criteria=_criteria_record(criteria),
                         size=size, seed=secrets.randbits(SEED_BITS) if seed is None else int(seed),
                         stratify_by=stratify_by, policy=ledger.policy_for_new_case(ctx), ctx=ctx)
    ledger.record(sample)
    return sample


def redraw(ledger: Any, sample: Sample) -> dict[str, Any]:
    """Draw a recorded sample again from its own criteria and seed: the cases and whether the population
    is still the one it was drawn from (same digest)."""
    from domain.sampling import population_digest

    criteria = dict(sample.criteria)
    for name in ("from", "to"):
        if name in criteria:
            criteria[name] = datetime.fromisoformat(criteria[name])
    strata = _strata(population(ledger, criteria), sample.stratify_by)
    return {"case_ids": draw_cases(strata, sample.size, sample.seed, sample.stratify_by is not None),
            "same_population": population_digest(strata) == sample.population_digest}


def open_audit(ledger: Any, ctx: Context, *, title: str, scope: str, period_from: datetime, period_to: datetime,
               auditor: str) -> AuditEngagement:
    engagement = AuditEngagement.open(id=uuid4(), title=title, scope=scope, period_from=period_from,
                                      period_to=period_to, auditor=auditor, policy=ledger.policy_for_new_case(ctx),
                                      ctx=ctx)
    ledger.record(engagement)
    return engagement
