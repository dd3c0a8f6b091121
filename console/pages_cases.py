"""Case pages: search, a case with its timeline, state as of any event, diff, related records,
personal data masked unless disclosed (and then recorded), and each event's inclusion proof."""

from __future__ import annotations

import base64
from typing import Any
from uuid import UUID

from flask import Flask, abort, current_app, g, render_template, request

from console import guard
from console.views import business_now, context, ledger, views
from ledger.errors import LedgerError, NotFound
from ledger.kinds import KINDS
from ledger.transparency import LogError
from projections.queries import list_complaints, list_tickets
from services.replay import Point

#: Kinds a case page shows (the others are reached through their own work pages).
CASE_KINDS = ("customer", "interaction", "ticket", "complaint", "feedback", "survey")
#: State attributes that name another record, and its kind.
LINKS = {"customer_id": "customer", "interaction_id": "interaction", "ticket_id": "ticket",
         "complaint_id": "complaint", "feedback_id": "feedback"}
SEARCH_FILTERS = ("status", "owner", "customer_id", "type")
PAGE_SIZE = 50


def register(app: Flask) -> None:
    app.add_url_rule("/console/", "home", home)
    app.add_url_rule("/console/cases", "search", search)
    app.add_url_rule("/console/cases/<kind>/<aggregate_id>", "case", case, methods=["GET", "POST"])
    app.add_url_rule("/console/proof/<kind>/<aggregate_id>/<int:version>", "proof", proof)
    app.add_url_rule("/console/proof/<kind>/<aggregate_id>/<int:version>.json", "proof_data", proof_data)


@guard.needs(guard.SIGNED_IN)
def home() -> Any:
    return render_template("home.html")


@guard.needs(guard.SIGNED_IN)
def search() -> Any:
    """Tickets and complaints from the read models, filtered; a case id goes straight to its page."""
    args = {name: request.args.get(name, "").strip() for name in (*SEARCH_FILTERS, "id", "period_from", "period_to")}
    found = _by_id(args["id"]) if args["id"] else None
    results: list[dict[str, Any]] = []
    notes: list[str] = []
    if not args["id"]:
        live = views()
        live.fresh()
        for kind, lister, action, at in (("ticket", list_tickets, "views.tickets", "received_at"),
                                         ("complaint", list_complaints, "views.complaints", "accepted_at")):
            if args["type"] and args["type"] != kind:
                continue
            criteria = _criteria(args, action, notes, kind)
            if criteria is None:
                continue
            page = lister(live.runner.db, criteria, as_of=business_now(), limit=PAGE_SIZE)
            for row in page["items"]:
                if _in_period(row.get(at), args["period_from"], args["period_to"]):
                    results.append({"kind": kind, "id": row[f"{kind}_id"], "status": row["status"],
                                    "owner": row.get("first_contact_owner") or row.get("handler"),
                                    "customer_id": row.get("customer_id"), "at": row.get(at),
                                    "overdue": row.get("overdue")})
    return render_template("search.html", args=args, results=results, found=found, notes=notes)


def _criteria(args: dict[str, str], action: str, notes: list[str], kind: str) -> dict[str, Any] | None:
    """The list filters, narrowed to the caller as the matrix asks of scoped roles (None: may not list)."""
    scope = guard.policy().scope(g.caller.role, action)
    if scope is None:
        return None
    criteria = {name: [args[name]] for name in ("status", "owner", "customer_id") if args[name]}
    if scope != "all" and not guard.policy().list_in_scope(g.caller, scope, criteria, has_team=kind == "ticket"):
        criteria["owner"] = [g.caller.actor_id]
        notes.append(f"your role lists only its own {kind}s: showing those you own")
    return criteria


def _in_period(stamp: str | None, first: str, last: str) -> bool:
    day = (stamp or "")[:10]
    return (not first or day >= first) and (not last or day <= last)


def _by_id(text: str) -> tuple[str, str] | None:
    """(kind, id) of the case with this id, if the caller may read it."""
    try:
        UUID(text)
    except ValueError:
        return None
    for kind in CASE_KINDS:
        try:
            aggregate = ledger().get(kind, text)
        except (NotFound, LedgerError, ValueError):
            continue
        guard.record_in_scope(kind, aggregate)
        return kind, str(aggregate.id)
    return None


def _load(kind: str, aggregate_id: str) -> Any:
    if kind not in CASE_KINDS or kind not in KINDS:
        abort(404)
    try:
        aggregate = ledger().get(kind, aggregate_id)
    except (NotFound, ValueError):
        abort(404)
    guard.record_in_scope(kind, aggregate)
    return aggregate


@guard.needs(guard.PER_RECORD)
def case(kind: str, aggregate_id: str) -> Any:
    aggregate = _load(kind, aggregate_id)
    contact, withheld = None, False
    if kind == "customer":
        reason = request.form.get("reason") if request.method == "POST" else None
        disclosure = guard.disclosure_for(reason)
        contact = disclosure.fields(str(aggregate.id), ledger().contact_details(aggregate.id))
        if disclosure.disclosed:  # recorded before anything is shown; if that fails, nothing is
            current_app.extensions["caseledger.access_log"].record(
                context(disclosure.reason), disclosure.disclosed, resource=f"console {request.path}")
        withheld = bool(disclosure.withheld)  # need-to-know said no: shown masked, and the page says why
    elif request.method == "POST":
        abort(405)
    page: dict[str, Any] = {"kind": kind, "aggregate": aggregate, "contact": contact, "withheld": withheld,
                            "links": _links(aggregate)}
    if guard.may("replay.read"):
        page.update(_replay(kind, aggregate))
    if kind == "customer" and guard.may("replay.read"):
        page["related"] = [(k, str(i)) for k, i in views().replay.related(aggregate.id)]
    return render_template("case.html", **page)


def _links(aggregate: Any) -> list[tuple[str, str, str]]:
    return [(name, LINKS[name], str(value)) for name, value in sorted(vars(aggregate).items())
            if name in LINKS and value]


def _replay(kind: str, aggregate: Any) -> dict[str, Any]:
    """Timeline, the state as of the chosen event (``at``: 1-based event number) and a diff."""
    replay = views().replay
    own = [e for e in replay.timeline(kind, aggregate.id) if e["aggregate_id"] == str(aggregate.id)]
    timeline = replay.timeline(kind, aggregate.id) if kind == "customer" else own
    count = len(own)
    at = _number(request.args.get("at"), count, count)
    state = replay.state(kind, aggregate.id, Point(position=own[at - 1]["position"])) if count else {}
    diff = None
    if request.args.get("from") and request.args.get("to"):
        first = _number(request.args.get("from"), 1, count)
        last = _number(request.args.get("to"), count, count)
        diff = replay.diff(kind, aggregate.id, Point(position=own[first - 1]["position"]),
                           Point(position=own[last - 1]["position"]))
        diff.update(first=first, last=last)
    return {"timeline": timeline, "own": own, "at": at, "state": state, "diff": diff}


def _number(text: str | None, default: int, top: int) -> int:
    try:
        value = int(text) if text else default
    except ValueError:
        value = default
    return min(max(value, 1), max(top, 1))


# -- inclusion proofs ------------------------------------------------------------------------------
def _proof(kind: str, aggregate_id: str, version: int) -> dict[str, Any]:
    aggregate = _load(kind, aggregate_id)
    log, proofs = current_app.extensions["caseledger.log"], current_app.extensions["caseledger.logproofs"]
    head = proofs.signed_head()
    try:
        index, position, leaf = log.leaf_of(aggregate.id, version)
    except LogError:
        abort(404)
    answer: dict[str, Any] = {"kind": kind, "aggregate_id": str(aggregate.id), "version": version,
                              "leaf_index": index, "position": position,
                              "leaf": base64.b64encode(leaf).decode("ascii")}
    if head is None or index >= head.size:
        answer["pending"] = "no signed checkpoint covers this event yet; it will after the next checkpoint"
        return answer
    answer.update(tree_size=head.size, checkpoint=head.note,
                  proof=[h.hex() for h in log.inclusion_proof(index, head.size)])
    return answer


@guard.needs("log.read")
def proof(kind: str, aggregate_id: str, version: int) -> Any:
    return render_template("proof.html", proof=_proof(kind, aggregate_id, version))


@guard.needs("log.read")
def proof_data(kind: str, aggregate_id: str, version: int) -> Any:
    return _proof(kind, aggregate_id, version)


__all__ = ["register"]
