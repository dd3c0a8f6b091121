"""Read-model endpoints: KPI dashboards, ticket/complaint lists, auditor replay.

Freshness: the API process keeps the read models up to date itself. Before answering a
dashboard or list request it catches up with the log (``ProjectionRunner.catch_up``) under a
process-wide lock, in the request's thread, so what you read includes every event committed
before your request — also under ``make run`` with no separate ``caseledger projections run``.
Running that process as well is safe: both commit through the same tracking rows (locked per
batch), so an event is never applied twice. Replay reads the event store directly and needs no
catch-up.

Query parameters: unknown ones are refused (422 problem+json, ``unknown=RAISE``: webargs would
otherwise drop them silently for the query string), so a misspelt filter never widens a result.

ETags: every response carries a strong ETag, the SHA-256 of its serialised body minus the time it
was computed at (``as_of``, which defaults to now) — so it derives from the read model's
``position`` (in the body) and what the query selects, not from the clock. Send it back in
``If-None-Match`` to get ``304 Not Modified`` while the read model has not moved and nothing you
asked for changed (a row's ``overdue`` flag can still change with time alone; the tag covers it).

Stalled read models (``projections.stalls``): an event a read model cannot apply stalls that read
model alone, so a read endpoint never fails because of what is in the log. It answers from the
last good state, and every response that read a read model says which state: header
``X-Read-Model-Position: <n>`` (the lowest log position of the read models it used) and, when one
of them is stalled, ``X-Read-Model-Stalled: <name> at <position>: <reason>``. Use cases that must
not act on a stale read model (retention, for one) raise ``ProjectionStalled``: a 503 problem
naming the read model (:func:`_stalled_problem`), never a 500.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from datetime import date
from typing import Any

from flask import Response, current_app, g, request
from flask_smorest import Api
from marshmallow import RAISE
from werkzeug.exceptions import BadRequest, ServiceUnavailable, UnprocessableEntity

from api import read_model_schemas as rs
from api.arguments import Blueprint
from api.openapi import IF_NONE_MATCH, reads_headers
from api.problems import problem
from ledger.errors import InvalidRequest
from projections.catalog import runner_for
from projections.kpis import dashboard, parse_period
from projections.queries import BadCursor, list_complaints, list_tickets
from projections.runtime import ProjectionRunner, ProjectionStalled, Status
from services.replay import Point, Replay

_EXTENSION = "caseledger.read_models"
#: Longest dashboard period: bounds the work (and the response) of one request.
MAX_PERIOD_DAYS = 366
_SETUP_LOCK = threading.Lock()
POSITION_HEADER = "X-Read-Model-Position"
STALLED_HEADER = "X-Read-Model-Stalled"
#: Longest X-Read-Model-Stalled value (a reason can quote an event).
MAX_STALLED_HEADER = 300
log = logging.getLogger("caseledger.api")


class LiveReadModels:
    """The app's read models, caught up on demand; one lock so only one thread projects at a time."""

    def __init__(self, ledger: Any):
        self.ledger = ledger
        self.runner: ProjectionRunner = runner_for(ledger)
        self.replay = Replay(ledger, self.runner.db)
        self.lock = threading.Lock()

    def fresh(self, *names: str) -> int:
        """Catch up with the log; returns the position the read models ``names`` (default: all)
        have reached, and notes their state for the response headers (:func:`_state_headers`).

        Never fails because of an event: a read model that cannot apply one is stalled (and
        skipped) by the runner, and what it has is served. Nor because catching up failed for a
        passing reason (a lock, a lost connection): what was committed is served, the header says
        how far it goes, and the next request catches up."""
        with self.lock:
            try:
                self.runner.catch_up(strict=False)
            except Exception as e:  # noqa: BLE001 - see the docstring; logged with its traceback
                log.warning("read models: catching up failed, serving the last committed state", exc_info=e)
                self.runner.db.close()  # a broken connection is not reused: the next use opens a new one
            try:
                states = [s for s in self.runner.status() if not names or s.name in names]
            except Exception as e:  # noqa: BLE001 - the database cannot be read at all
                log.warning("read models: cannot read their positions", exc_info=e)
                raise ServiceUnavailable("the read models cannot be read now; retry later") from None
        g.read_model_states = [*getattr(g, "read_model_states", []), *states]
        return min((s.position for s in states), default=0)


def read_models() -> LiveReadModels:
    with _SETUP_LOCK:
        live = current_app.extensions.get(_EXTENSION)
        if live is None:
            try:
                live = current_app.extensions[_EXTENSION] = LiveReadModels(current_app.extensions["caseledger"])
            except RuntimeError as e:  # e.g. tables built by another projection version
                raise ServiceUnavailable(str(e)) from None
        return live


def _state_headers(response: Response) -> Response:
    """``X-Read-Model-Position`` / ``X-Read-Model-Stalled`` on every response that read a read model."""
    states: list[Status] = getattr(g, "read_model_states", None) or []
    if states:
        response.headers[POSITION_HEADER] = str(min(s.position for s in states))
        stalled = {s.name: s.stall for s in states if s.stall is not None}
        if stalled:
            response.headers[STALLED_HEADER] = _header_text("; ".join(
                f"{name} at {stall.position}: {stall.reason}" for name, stall in sorted(stalled.items())))
    return response


def _header_text(text: str) -> str:
    """Printable ASCII on one line (a header value must be; the reason may quote anything)."""
    clean = "".join(c if " " <= c <= "~" else "?" for c in " ".join(text.split()))
    return clean if len(clean) <= MAX_STALLED_HEADER else clean[:MAX_STALLED_HEADER - 3] + "..."


def _stalled_problem(error: ProjectionStalled) -> Response:
    """A use case refused to act on a stalled read model: 503, naming it (the stall is an operator's
    to repair; retrying will not help until then, hence no Retry-After)."""
    return problem(503, "Service Unavailable", str(error), type_="read-model-stalled", read_model=error.projection,
                   position=error.position)


#: Body fields that say when an answer was computed, not what it is: left out of the ETag.
UNTAGGED = frozenset({"as_of"})


def conditional(body: dict[str, Any], schema: type) -> Any:
    """Answer 304 when the client already has this body (ignoring when it was computed: :data:`UNTAGGED`),
    else the body with its ETag."""
    tagged = {k: v for k, v in schema().dump(body).items() if k not in UNTAGGED}
    serialised = json.dumps(tagged, sort_keys=True, ensure_ascii=False, default=str)
    # surrogatepass: a replayed event may hold a lone surrogate (the log keeps what was stored); the
    # body escapes it, and the tag must not fail on it.
    tag = hashlib.sha256(serialised.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    headers = {"ETag": f'"{tag}"', "Cache-Control": "private, no-cache"}
    if request.if_none_match and request.if_none_match.contains_weak(tag):
        return Response(status=304, headers=headers)
    return body, 200, headers


def _now() -> Any:
    return current_app.extensions["caseledger.clock"]()


def _criteria(query: dict[str, Any], *names: str) -> dict[str, Any]:
    out = {}
    for name in names:
        value = query.get(name)
        if value:
            out[name] = [str(v) if not isinstance(v, int) else v for v in value]
    return out


def _case_page(query: dict, lister, filters: tuple[str, ...], schema: type,  # noqa: ANN001, ANN202
               read_model: str):
    """One page of a case list: catch up, filter, paginate, and answer with an ETag."""
    live = read_models()
    position = live.fresh(read_model)
    as_of = query["as_of"] or _now()
    try:
        page = lister(live.runner.db, _criteria(query, *filters), as_of=as_of, overdue=query["overdue"],
                      cursor=query["cursor"], limit=query["limit"])
    except BadCursor as e:
        raise BadRequest(str(e)) from None
    return conditional({**page, "position": position, "as_of": as_of.isoformat()}, schema)


def _views(blp: Blueprint) -> None:
    @blp.route("/tickets", endpoint="tickets")
    @blp.arguments(rs.TicketListQuery, location="query", unknown=RAISE)
    @blp.response(200, rs.TicketPage, headers=rs.READ_MODEL_HEADERS)
    @blp.doc(summary="Tickets, filtered, in creation order, keyset-paginated (ids and facts only)")
    @reads_headers(IF_NONE_MATCH)
    def tickets(query):  # noqa: ANN001, ANN202
        return _case_page(query, list_tickets, ("status", "priority", "complexity", "channel", "owner", "handler",
                                                "team", "customer_id"), rs.TicketPage, "ticket_list")

    @blp.route("/complaints", endpoint="complaints")
    @blp.arguments(rs.ComplaintListQuery, location="query", unknown=RAISE)
    @blp.response(200, rs.ComplaintPage, headers=rs.READ_MODEL_HEADERS)
    @blp.doc(summary="Complaints, filtered, in acceptance order, keyset-paginated (ids and facts only)")
    @reads_headers(IF_NONE_MATCH)
    def complaints(query):  # noqa: ANN001, ANN202
        return _case_page(query, list_complaints, ("status", "channel", "level", "complaint_type", "rung", "handler",
                                                   "owner", "customer_id"), rs.ComplaintPage, "complaint_list")


def _dashboards(blp: Blueprint) -> None:
    @blp.route("/kpis", endpoint="kpis")
    @blp.arguments(rs.KpiQuery, location="query", unknown=RAISE)
    @blp.response(200, rs.Dashboard, headers=rs.READ_MODEL_HEADERS)
    @blp.doc(summary="KPIs per business day, channel or team, each with its definition and policy target",
             description="Definitions: projections/README.md. Days are business days in the policy's time zone.")
    @reads_headers(IF_NONE_MATCH)
    def kpis(query):  # noqa: ANN001, ANN202
        live = read_models()
        position = live.fresh("kpi_counters")
        ledger = live.ledger
        tz = ledger.policies.versions(ledger.policy_name)[-1].tz
        today = _now().astimezone(tz).date()
        first: date | None = query["from_"]
        last: date | None = query["to"]
        try:
            start, end = parse_period(first.isoformat() if first else None, last.isoformat() if last else None, today)
        except (ValueError, OverflowError) as e:  # from after to; a default start before year 1
            raise UnprocessableEntity(str(e)) from None
        if (end - start).days >= MAX_PERIOD_DAYS:
            raise UnprocessableEntity(f"a dashboard covers at most {MAX_PERIOD_DAYS} days")
        body = dashboard(live.runner.db, ledger, start, end, query["group_by"])
        return conditional({**body, "from_": body.pop("from"), "position": position}, rs.Dashboard)


def _replay(blp: Blueprint) -> None:
    @blp.route("/<kind>/<aggregate_id>/timeline", endpoint="timeline")
    @blp.arguments(rs.NoQuery, location="query", unknown=RAISE)
    @blp.response(200, rs.Timeline)
    @blp.doc(summary="Every event of a case in log order (a customer: also their cases' events)")
    @reads_headers(IF_NONE_MATCH)
    def timeline(_query, kind, aggregate_id):  # noqa: ANN001, ANN202
        items = read_models().replay.timeline(kind, aggregate_id)
        return conditional({"kind": kind, "id": aggregate_id, "items": items}, rs.Timeline)

    @blp.route("/<kind>/<aggregate_id>/state", endpoint="state")
    @blp.arguments(rs.StateQuery, location="query", unknown=RAISE)
    @blp.response(200, rs.ReplayedState)
    @blp.doc(summary="A case's state AS OF a business time or a log position, replayed from its events")
    @reads_headers(IF_NONE_MATCH)
    def state(query, kind, aggregate_id):  # noqa: ANN001, ANN202
        if (query["as_of"] is None) == (query["position"] is None):
            raise InvalidRequest("give exactly one of as_of (business time) or position (log position)")
        point = Point(as_of=query["as_of"], position=query["position"])
        replayed = read_models().replay.state(kind, aggregate_id, point)
        return conditional({"kind": kind, "id": aggregate_id, "point": point.describe(), "state": replayed},
                           rs.ReplayedState)

    @blp.route("/<kind>/<aggregate_id>/diff", endpoint="diff")
    @blp.arguments(rs.DiffQuery, location="query", unknown=RAISE)
    @blp.response(200, rs.ReplayedDiff)
    @blp.doc(summary="Attributes that changed between two points (each a log position or an ISO time)")
    @reads_headers(IF_NONE_MATCH)
    def diff(query, kind, aggregate_id):  # noqa: ANN001, ANN202
        before, after = Point.parse(query["from_"]), Point.parse(query["to"])
        changes = read_models().replay.diff(kind, aggregate_id, before, after)
        return conditional({"kind": kind, "id": aggregate_id, "from_": before.describe(), "to": after.describe(),
                            **changes}, rs.ReplayedDiff)


def register_read_models(api: Api) -> None:
    views = Blueprint("views", __name__, url_prefix="/views", description="Read models: case lists")
    dashboards = Blueprint("dashboards", __name__, url_prefix="/dashboards", description="Read models: KPIs")
    replay = Blueprint("replay", __name__, url_prefix="/replay", description="Auditor replay from the event store")
    _views(views)
    _dashboards(dashboards)
    _replay(replay)
    # App-wide, registered here with the read models they are about: the state headers on every
    # response that read one (also other modules' endpoints using fresh()), and the 503 of a use
    # case that found its read model stalled.
    views.after_app_request(_state_headers)
    views.app_errorhandler(ProjectionStalled)(_stalled_problem)
    for blp in (views, dashboards, replay):
        api.register_blueprint(blp)
