"""Resources: create, drive and read every aggregate. Each handler parses, calls the ledger, returns."""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from flask import current_app, g, request
from flask_smorest import Api, Blueprint, abort
from marshmallow import ValidationError
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from api import schemas as s
from api.auth import current_caller
from domain.context import Context
from ledger.application import ACTIONS, CaseLedger
from ledger.records import event_record

#: URL collection names per aggregate kind.
COLLECTIONS = {"customer": "customers", "interaction": "interactions", "ticket": "tickets",
               "complaint": "complaints", "feedback": "feedback", "survey": "surveys"}
_ETAG = re.compile(r'^(?:W/)?"?(\d+)"?$')


def ledger() -> CaseLedger:
    return current_app.extensions["caseledger"]


def context(reason: str | None = None, occurred_at: Any = None) -> Context:
    caller = current_caller()
    return Context(actor_id=caller.actor_id, actor_role=caller.role,
                   occurred_at=occurred_at or current_app.extensions["caseledger.clock"](),
                   request_id=g.request_id, reason=reason, client_request_id=g.get("client_request_id"))


def expected_version() -> int | None:
    """The version named by ``If-Match`` (our ETags are the aggregate version), if any."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    match = _ETAG.match(header.strip())
    if not match:
        raise BadRequest("If-Match must be an ETag this API issued, like \"3\"")
    return int(match.group(1))


def state(kind: str, aggregate: Any) -> tuple[dict[str, Any], int, dict[str, str]]:
    data = {k: v for k, v in vars(aggregate).items() if not k.startswith("_")}
    data.update(id=aggregate.id, version=aggregate.version, created_on=aggregate.created_on,
                modified_on=aggregate.modified_on)
    if kind == "customer":
        data["contact"] = ledger().contact_details(aggregate.id)
    return data, 200, {"ETag": f'"{aggregate.version}"'}


def created(kind: str, aggregate: Any) -> tuple[dict[str, Any], int, dict[str, str]]:
    data, _, headers = state(kind, aggregate)
    headers["Location"] = f"/{COLLECTIONS[kind]}/{aggregate.id}"
    return data, 201, headers


def _reads(api: Api, kind: str) -> Blueprint:
    """GET one, GET its events, and one POST per action the ledger allows on this kind."""
    collection = COLLECTIONS[kind]
    blp = Blueprint(collection, __name__, url_prefix=f"/{collection}", description=f"{kind.capitalize()} records")
    schema = s.STATE_SCHEMAS[kind]

    @blp.route("/<uuid:aggregate_id>", endpoint="get")
    @blp.response(200, schema)
    def get(aggregate_id):  # noqa: ANN001, ANN202
        return state(kind, ledger().get(kind, aggregate_id))

    @blp.route("/<uuid:aggregate_id>/events", endpoint="events")
    @blp.arguments(s.EventQuery, location="query")
    @blp.response(200, s.EventPage)
    def events(query, aggregate_id):  # noqa: ANN001, ANN202
        items = ledger().history(kind, aggregate_id, after=query["after"], limit=query["limit"])
        next_after = items[-1].originator_version if len(items) == query["limit"] else None
        return {"items": [event_record(e) for e in items], "next_after": next_after}

    for action in sorted(ACTIONS[kind]):
        _action_route(blp, kind, action, schema)
    return blp


def _action_route(blp: Blueprint, kind: str, action: str, state_schema: type) -> None:
    path = action.replace("_", "-")

    @blp.route(f"/<uuid:aggregate_id>/{path}", methods=["POST"], endpoint=action)
    @blp.arguments(s.ACTION_SCHEMAS[kind][action])
    @blp.response(200, state_schema)
    @blp.doc(summary=f"{action.replace('_', ' ').capitalize()} a {kind}",
             description="Send If-Match with the ETag you read to refuse a change made meanwhile (412).")
    def act(args, aggregate_id):  # noqa: ANN001, ANN202
        ctx = context(reason=args.pop("reason", None))
        return state(kind, ledger().act(kind, aggregate_id, action, ctx, args, expected_version()))


def _creation(blp: Blueprint, kind: str, schema: type, create: Callable[..., Any]) -> None:
    @blp.route("", methods=["POST"], endpoint="create")
    @blp.arguments(schema)
    @blp.response(201, s.STATE_SCHEMAS[kind])
    def post(args):  # noqa: ANN001, ANN202
        return created(kind, create(context(), **_stringify_ids(args)))


def _stringify_ids(args: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if k.endswith("_id") and v is not None else v) for k, v in args.items()}


def register_resources(api: Api) -> None:
    blueprints = {kind: _reads(api, kind) for kind in COLLECTIONS}
    _creation(blueprints["customer"], "customer", s.CustomerCreate, lambda ctx, **a: ledger().register_customer(ctx, **a))
    _creation(blueprints["interaction"], "interaction", s.InteractionCreate,
              lambda ctx, **a: ledger().receive_interaction(ctx, **a))
    _creation(blueprints["ticket"], "ticket", s.TicketCreate, lambda ctx, **a: ledger().open_ticket(ctx, **a))
    _creation(blueprints["complaint"], "complaint", s.ComplaintCreate,
              lambda ctx, **a: ledger().accept_complaint(ctx, **a))
    _creation(blueprints["feedback"], "feedback", s.FeedbackCreate, lambda ctx, **a: ledger().submit_feedback(ctx, **a))
    _creation(blueprints["survey"], "survey", s.SurveyCreate, lambda ctx, **a: ledger().answer_survey(ctx, **a))
    log = Blueprint("events", __name__, url_prefix="/events", description="The ledger's log of all events")
    _log(log)
    blueprints["log"] = log
    _feedback_escalation(blueprints["feedback"])
    _interaction_import(blueprints["interaction"])
    for blp in blueprints.values():
        api.register_blueprint(blp)


def _log(blp: Blueprint) -> None:
    @blp.route("", endpoint="list")
    @blp.arguments(s.EventQuery, location="query")
    @blp.response(200, s.LogPage)
    @blp.doc(summary="All events in log order, with actor, role, time and policy")
    def events(query):  # noqa: ANN001, ANN202
        page = ledger().log(after=query["after"], limit=query["limit"])
        next_after = page[-1][0] if len(page) == query["limit"] else None
        return {"items": [event_record(e, position) for position, e in page], "next_after": next_after}


def _feedback_escalation(blp: Blueprint) -> None:
    @blp.route("/<uuid:aggregate_id>/escalate", methods=["POST"], endpoint="escalate")
    @blp.arguments(s.ActionSchema)
    @blp.response(201, s.ComplaintState)
    @blp.doc(summary="Turn complaint feedback into a formal complaint (both saved together)")
    def escalate(args, aggregate_id):  # noqa: ANN001, ANN202
        complaint = ledger().escalate_feedback(context(reason=args.get("reason")), str(aggregate_id),
                                               expected_version=expected_version())
        return created("complaint", complaint)


def _interaction_import(blp: Blueprint) -> None:
    @blp.route("/import", methods=["POST"], endpoint="import")
    @blp.response(200, s.ImportReport)
    @blp.doc(summary="Bulk import interactions (newline-delimited JSON, one interaction a line)",
             description="All lines are validated first; any bad line rejects the whole file (422, with line "
                         "numbers) and nothing is written. Lines with an external_ref are imported once.")
    def import_():  # noqa: ANN202
        if request.mimetype not in {"application/x-ndjson", "application/jsonl", "application/json-seq"}:
            raise UnsupportedMediaType("send newline-delimited JSON as application/x-ndjson")
        records, errors = parse_import_lines(request.get_data(as_text=True).splitlines())
        if errors:
            abort(422, messages=errors)
        report = ledger().import_interactions([(context(occurred_at=when), fields) for when, fields in records])
        return {**report, "lines": len(records)}


def parse_import_lines(lines: list[str]) -> tuple[list[tuple[Any, dict[str, Any]]], dict[str, Any]]:
    """Validate every line against the contract; return (records, errors by line number)."""
    schema = s.InteractionImportLine()
    records: list[tuple[Any, dict[str, Any]]] = []
    errors: dict[str, Any] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            fields = schema.load(json.loads(line))
        except json.JSONDecodeError as e:
            errors[f"line {number}"] = [f"not valid JSON: {e.msg}"]
            continue
        except ValidationError as e:
            errors[f"line {number}"] = e.messages
            continue
        when = fields.pop("occurred_at", None)
        records.append((when, _stringify_ids(fields)))
    if not records and not errors:
        errors["body"] = ["no interactions in the file"]
    return records, errors
