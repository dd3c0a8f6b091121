"""Work queues (unregistered contacts, open feedback, complaints by handler) and the incident list:
the read models the API's ``/work/…`` and ``GET /incidents`` read, keyset-paginated with a "next"
link carrying the same opaque cursor, under the same actions (``work.queues``, ``incident.read``).

A role whose ``work.queues`` grant has scope ``own`` (agents) sees only its own items, as the API
requires of it (``owner=<you>``), except in the shared intake queue of unregistered contacts, which
has no owner and which any agent may take from.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, g, render_template, request

from console import guard
from console.pages_cases import CASE_KINDS
from console.views import views
from domain.incident import IncidentKind
from projections.incidents import FILTERS as INCIDENT_FILTERS
from projections.incidents import list_incidents
from projections.queries import BadCursor
from projections.work_queues import QUEUES, list_work

#: The queue everybody may take from (no owner yet).
SHARED_QUEUE = "unregistered_contacts"
INCIDENT_STATUSES = ("reported", "recovered", "closed")
DEFAULT_LIMIT, MAX_LIMIT = 50, 200


def register(app: Flask) -> None:
    app.add_url_rule("/console/work", "work", work)
    app.add_url_rule("/console/incidents", "incidents", incidents)


def _limit() -> int:
    try:
        return min(max(int(request.args.get("limit", DEFAULT_LIMIT)), 1), MAX_LIMIT)
    except ValueError:
        return DEFAULT_LIMIT


def _cursor() -> str | None:
    cursor = request.args.get("cursor") or None
    if cursor is not None and (len(cursor) > 200 or not cursor.isprintable()):
        abort(400, "that page link is not valid: start from the first page")
    return cursor


@guard.needs("work.queues")
def work() -> Any:
    queue = request.args.get("queue", SHARED_QUEUE)
    if queue not in QUEUES:
        abort(404, f"no work queue {queue!r}: there are {', '.join(QUEUES)}")
    owner = request.args.get("owner", "").strip()[:100] or None
    note = None
    if queue != SHARED_QUEUE and guard.policy().scope(g.caller.role, "work.queues") != "all" \
            and owner != g.caller.actor_id:
        owner, note = g.caller.actor_id, "your role lists only its own items: showing yours"
    live = views()
    live.fresh()
    try:
        page = list_work(live.runner.db, queue, owner=owner, cursor=_cursor(), limit=_limit())
    except BadCursor:
        abort(400, "that page link is not valid: start from the first page")
    return render_template("work.html", queues=QUEUES, queue=queue, owner=owner or "", note=note, page=page,
                           limit=_limit(), case_kinds=CASE_KINDS)


@guard.needs("incident.read")
def incidents() -> Any:
    criteria = {name: [request.args[name]] for name in INCIDENT_FILTERS if request.args.get(name)}
    allowed = {"status": INCIDENT_STATUSES, "incident_kind": sorted(IncidentKind.ALL)}
    for name, values in allowed.items():
        if criteria.get(name, [values[0]])[0] not in values:
            abort(400, f"{name} is one of {', '.join(values)}")
    live = views()
    live.fresh()
    try:
        page = list_incidents(live.runner.db, criteria, cursor=_cursor(), limit=_limit())
    except BadCursor:
        abort(400, "that page link is not valid: start from the first page")
    filters = {name: (criteria.get(name) or [""])[0] for name in INCIDENT_FILTERS}
    return render_template("incidents.html", page=page, filters=filters, limit=_limit(), allowed=allowed,
                           filters_set={name: value for name, value in filters.items() if value})


__all__ = ["register"]
