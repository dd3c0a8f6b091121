"""Resources: create, drive and read every aggregate. Each handler parses, calls the ledger, returns."""

from __future__ import annotations

import hashlib
import re
from typing import Any, Callable, Iterable

from flask import current_app, g, request
from flask_smorest import Api, abort
from marshmallow import RAISE, ValidationError
from werkzeug.exceptions import BadRequest

from api.arguments import Blueprint
from api import pagination, schemas as s
from api.idempotency import answers
from api.auth import current_caller, preloaded
from api.action_docs import ACTION_SUMMARIES
from api.boundary import accepts
from api.openapi import IF_MATCH, reads_headers
from domain import text
from domain.context import Context
from ledger.application import ACTIONS, CaseLedger
from ledger.errors import NotFound
from ledger.idempotency import Written
from ledger.records import event_record
from services.surveys import answer_case_survey

#: URL collection names per aggregate kind.
COLLECTIONS = {"customer": "customers", "interaction": "interactions", "ticket": "tickets",
               "complaint": "complaints", "feedback": "feedback", "survey": "surveys"}
_ETAG = re.compile(r'^(?:W/)?"?(\d{1,19})"?$')  # versions are BIGINTs: no 5,000-digit int() on a header
#: Media types of the bulk import (newline-delimited JSON).
NDJSON = ("application/x-ndjson", "application/jsonl", "application/json-seq")
IMPORT_EXAMPLE = ('{"channel": "phone", "external_ref": "CALL-7", "occurred_at": "2025-09-01T09:00:00+08:00"}\n'
                  '{"channel": "email", "external_ref": "MAIL-8", "content": "invoice question"}\n')
#: What creating each kind means, for the OpenAPI document.
CREATION_SUMMARIES = {"customer": "Register a customer (contact details are personal data, sealed)",
                      "interaction": "Record a customer contact (call, chat, email…)",
                      "ticket": "Open a ticket (工单) for a customer",
                      "complaint": "Accept a formal complaint (starts its closed-loop clock)",
                      "feedback": "Record feedback: a complaint, suggestion or praise",
                      "survey": "Record a satisfaction survey (CSAT, NPS) about a ticket"}


def ledger() -> CaseLedger:
    return current_app.extensions["caseledger"]


def context(reason: str | None = None, occurred_at: Any = None, imported: str | None = None) -> Context:
    state = g._get_current_object()  # not a proxy lookup per field
    caller = state.caller
    return Context(actor_id=caller.actor_id, actor_role=caller.role,
                   occurred_at=occurred_at or current_app.extensions["caseledger.clock"](),
                   request_id=state.request_id, reason=reason, client_request_id=state.get("client_request_id"),
                   imported=imported if occurred_at else None)


def expected_version() -> int | None:
    """The version named by ``If-Match`` (our ETags are the aggregate version), if any."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    match = _ETAG.match(header.strip())
    if not match or int(match.group(1)) > s.BIGINT:
        raise BadRequest("If-Match must be an ETag this API issued, like \"3\"")
    return int(match.group(1))


def first_contact_agent(named: str | None, caller: str) -> str | None:
    """首问负责制: whoever registers a contact is its first-contact agent, so ``agent_id`` may only
    name the caller (a client cannot make someone else answerable for a contact). The problem, or None."""
    if named is None or named == caller:
        return None
    return f"the first-contact agent is whoever registers the contact: only your own id ({caller}) is accepted"


def _own_agent(args: dict[str, Any]) -> None:
    """422 naming ``agent_id`` when it names someone other than the caller."""
    problem = first_contact_agent(args.get("agent_id"), current_caller().actor_id)
    if problem:
        abort(422, messages={"json": {"agent_id": [problem]}})


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


def written_state(kind: str, written: Written, aggregate_id: Any) -> Any:
    """An aggregate at the version a request with an Idempotency-Key wrote (to rebuild its answer)."""
    return ledger().get(kind, aggregate_id, version=written.last(aggregate_id))


def written_new(kind: str, written: Written) -> Any:
    """The aggregate of ``kind`` a request with an Idempotency-Key created, at the version it wrote."""
    for aggregate_id in written.created_ids():
        try:
            return written_state(kind, written, aggregate_id)
        except NotFound:  # created alongside (e.g. a disclosure record): not the one
            continue
    raise NotFound(f"the first request with this Idempotency-Key created no {kind}")


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _reads(api: Api, kind: str) -> Blueprint:
    """GET one, GET its events, and one POST per action the ledger allows on this kind."""
    collection = COLLECTIONS[kind]
    blp = Blueprint(collection, __name__, url_prefix=f"/{collection}", description=f"{kind.capitalize()} records")
    schema = s.STATE_SCHEMAS[kind]

    @blp.route("/<uuid:aggregate_id>", endpoint="get")
    @blp.response(200, schema)
    @blp.doc(summary=f"Read {_article(kind)}'s current state (ETag: its version)")
    def get(aggregate_id):  # noqa: ANN001, ANN202
        return state(kind, preloaded(kind, aggregate_id) or ledger().get(kind, aggregate_id))

    @blp.route("/<uuid:aggregate_id>/events", endpoint="events")
    @blp.arguments(s.EventQuery, location="query", unknown=RAISE)
    @blp.response(200, s.EventPage)
    @blp.doc(summary=f"The history of {_article(kind)}: its events, oldest first, a page at a time")
    def events(query, aggregate_id):  # noqa: ANN001, ANN202
        after = pagination.after(query, f"{kind}-events")
        items = ledger().history(kind, aggregate_id, after=after, limit=query["limit"] + 1)
        page, more = items[:query["limit"]], len(items) > query["limit"]
        last = page[-1].originator_version if more else None
        return {"items": [event_record(e) for e in page], **pagination.next_page(f"{kind}-events", last)}

    for action in sorted(ACTIONS[kind]):
        _action_route(blp, kind, action, schema)
    return blp


def _action_route(blp: Blueprint, kind: str, action: str, state_schema: type) -> None:
    path = action.replace("_", "-")

    @blp.route(f"/<uuid:aggregate_id>/{path}", methods=["POST"], endpoint=action)
    @blp.arguments(s.ACTION_SCHEMAS[kind][action])
    @blp.response(200, state_schema)
    @blp.doc(summary=ACTION_SUMMARIES.get(kind, {}).get(action),
             description="Send If-Match with the ETag you read to refuse a change made meanwhile (412).")
    @answers(lambda written, args, aggregate_id: state(kind, written_state(kind, written, aggregate_id)))
    @reads_headers(IF_MATCH)
    def act(args, aggregate_id):  # noqa: ANN001, ANN202
        if (kind, action) == ("interaction", "register"):
            _own_agent(args)
            args["agent_id"] = current_caller().actor_id
        ctx = context(reason=args.pop("reason", None))
        return state(kind, ledger().act(kind, aggregate_id, action, ctx, args, expected_version(),
                                        loaded=preloaded(kind, aggregate_id)))


def _creation(blp: Blueprint, kind: str, schema: type, create: Callable[..., Any]) -> None:
    @blp.route("", methods=["POST"], endpoint="create")
    @blp.arguments(schema)
    @blp.response(201, s.STATE_SCHEMAS[kind])
    @blp.doc(summary=CREATION_SUMMARIES[kind])
    @answers(lambda written, args: created(kind, written_new(kind, written)))
    def post(args):  # noqa: ANN001, ANN202
        if "agent_id" in args:
            _own_agent(args)
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
    # Through services.surveys, as POST /case-surveys: the case's own handler may not enter its survey.
    _creation(blueprints["survey"], "survey", s.SurveyCreate,
              lambda ctx, ticket_id, **a: answer_case_survey(ledger(), ctx, case_kind="ticket", case_id=ticket_id, **a))
    log = Blueprint("events", __name__, url_prefix="/events", description="The ledger's log of all events")
    _log(log)
    blueprints["log"] = log
    _feedback_escalation(blueprints["feedback"])
    _interaction_import(blueprints["interaction"])
    for blp in blueprints.values():
        api.register_blueprint(blp)


def _log(blp: Blueprint) -> None:
    @blp.route("", endpoint="list")
    @blp.arguments(s.EventQuery, location="query", unknown=RAISE)
    @blp.response(200, s.LogPage)
    @blp.doc(summary="All events in log order, with actor, role, time and policy")
    def events(query):  # noqa: ANN001, ANN202
        rows = ledger().log(after=pagination.after(query, "log"), limit=query["limit"] + 1)
        page, more = rows[:query["limit"]], len(rows) > query["limit"]
        return {"items": [event_record(e, position) for position, e in page],
                **pagination.next_page("log", page[-1][0] if more else None)}


def _feedback_escalation(blp: Blueprint) -> None:
    @blp.route("/<uuid:aggregate_id>/escalate", methods=["POST"], endpoint="escalate")
    @blp.arguments(s.ActionSchema)
    @blp.response(201, s.ComplaintState)
    @blp.doc(summary="Turn complaint feedback into a formal complaint (both saved together)")
    @answers(lambda written, args, aggregate_id: created("complaint", written_new("complaint", written)))
    @reads_headers(IF_MATCH)
    def escalate(args, aggregate_id):  # noqa: ANN001, ANN202
        complaint = ledger().escalate_feedback(context(reason=args.get("reason")), str(aggregate_id),
                                               expected_version=expected_version())
        return created("complaint", complaint)


def _interaction_import(blp: Blueprint) -> None:
    @blp.route("/import", methods=["POST"], endpoint="import")
    @blp.response(200, s.ImportReport)
    @blp.doc(summary="Bulk import interactions (newline-delimited JSON, one interaction a line)",
             description="All lines are validated first; any bad line (not UTF-8, not JSON, not the schema, an "
                         "agent_id other than yours) rejects the whole file (422, with line numbers) and nothing "
                         "is written. Lines with an external_ref are imported once. The body: one JSON "
                         f"object a line, sent as {' or '.join(NDJSON)}, for example:\n\n{IMPORT_EXAMPLE}")
    @accepts(*NDJSON)
    @answers(_imported)
    def import_():  # noqa: ANN202
        data = request.get_data()
        records, errors = parse_import_lines(data.splitlines(), caller=current_caller().actor_id)
        if errors:
            abort(422, messages=errors)
        # A line with its own (past) business time is a historical record, and says so.
        source = f"POST /interactions/import sha256:{hashlib.sha256(data).hexdigest()}"
        report = ledger().import_interactions([(context(occurred_at=when, imported=source), fields)
                                               for when, fields in records])
        return {**report, "lines": len(records)}


def _imported(written: Written) -> dict[str, int]:
    """The report of an import whose answer was lost: its interactions were all new ones (version 1).
    An import is a transaction per batch; one cut short by a crash reports the rest as skipped, and
    importing the file again (new key) adds only lines whose external_ref was not imported yet."""
    lines = len(parse_import_lines(request.get_data().splitlines())[0])
    return {"imported": written.created, "skipped": lines - written.created, "lines": lines}


def parse_import_lines(lines: Iterable[bytes | str], *, caller: str | None = None,
                       ) -> tuple[list[tuple[Any, dict[str, Any]]], dict[str, Any]]:
    """Validate every line against the contract; return (records, errors by line number).

    Lines are bytes as read (split on line feeds only: U+2028 inside a JSON string is no line
    break), each decoded as strict UTF-8 — a line that is not is refused, never stored with
    replacement characters. ``caller``: who imports, the only first-contact agent a line may name."""
    schema = s.InteractionImportLine()
    records: list[tuple[Any, dict[str, Any]]] = []
    errors: dict[str, Any] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            line = text.decode_utf8(line) if isinstance(line, bytes) else line
        except text.MalformedInput as e:
            errors[f"line {number}"] = [str(e)]
            continue
        try:
            fields = schema.load(text.loads(line))
        except text.MalformedInput as e:
            errors[f"line {number}"] = [f"not valid JSON: {e}"]
            continue
        except text.RefusedValues as e:
            errors[f"line {number}"] = e.messages()
            continue
        except ValidationError as e:
            errors[f"line {number}"] = e.messages
            continue
        if caller is not None and (problem := first_contact_agent(fields.get("agent_id"), caller)):
            errors[f"line {number}"] = {"agent_id": [problem]}
            continue
        when = fields.pop("occurred_at", None)
        records.append((when, _stringify_ids(fields)))
    if not records and not errors:
        errors["body"] = ["no interactions in the file"]
    return records, errors
