"""Retention, legal holds and disposition over HTTP. Handlers parse, call ``services.retention``, return."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask import current_app
from flask_smorest import Api
from marshmallow import RAISE, Schema, fields, validate

from api.arguments import Blueprint
from api.idempotency import answers
from api.resources import context, written_new, written_state
from api import pagination
from api.schemas import Cursor, NextCursor, Strict, Text
from domain import text
from services.retention import Retention, build_retention


def service() -> Retention:
    extensions = current_app.extensions
    if "caseledger.retention" not in extensions:
        extensions["caseledger.retention"] = build_retention(extensions["caseledger"],
                                                             extensions["caseledger.settings"])
    return extensions["caseledger.retention"]


# -- contract --------------------------------------------------------------------------------------
#: Times the ledger can compute with (a due date is up to a few years after a record's trigger);
#: every request time also lies in domain.text's years (Strict).
SANE_TIMES = validate.Range(min=datetime(1970, 1, 1, tzinfo=timezone.utc),
                            max=datetime(text.MAX_YEAR, 12, 31, 23, 59, 59, tzinfo=timezone.utc))


class RecordQuery(Strict):
    subject = fields.UUID(load_default=None)
    due_before = fields.AwareDateTime(load_default=None, validate=SANE_TIMES)
    limit = fields.Integer(load_default=200, validate=validate.Range(1, 1000))
    cursor = Cursor()


class RecordRow(Schema):
    kind = fields.String()
    record_id = fields.String()
    subject = fields.String()
    record_class = fields.String(allow_none=True)
    clause = fields.String(allow_none=True)
    policy_ref = fields.String()
    trigger_milestone = fields.String(allow_none=True)
    trigger_at = fields.String(allow_none=True)
    due_at = fields.String(allow_none=True)
    calendar_ref = fields.String(allow_none=True, metadata={"description": "the calendar data the due date was computed with (None: no working days involved)"})
    held_by = fields.List(fields.String())
    destroyed_at = fields.String(allow_none=True)


class RecordPage(Schema):
    items = fields.List(fields.Nested(RecordRow))
    next_cursor = NextCursor()


class ReportQuery(Strict):
    as_of = fields.AwareDateTime(required=True, validate=SANE_TIMES, metadata={"description": "assess as of this time"})


class ReportRecord(Schema):
    kind = fields.String()
    id = fields.String()
    record_class = fields.String()
    clause = fields.String()
    due_at = fields.String(allow_none=True)


class ReportRow(Schema):
    subject = fields.String()
    disposable = fields.Boolean()
    blockers = fields.List(fields.String())
    records = fields.List(fields.Nested(ReportRecord))


class Report(Schema):
    as_of = fields.String()
    items = fields.List(fields.Nested(ReportRow))


class HoldCreate(Strict):
    target_kind = fields.String(required=True, validate=validate.OneOf(["customer", "ticket", "complaint"]))
    target_id = fields.UUID(required=True)
    authority = Text(200, required=True)
    reason = Text(500, required=True)


class Reason(Strict):
    reason = Text(500, load_default=None)


class HoldQuery(Strict):
    subject = fields.UUID(load_default=None)
    active = fields.Boolean(load_default=False)
    limit = fields.Integer(load_default=200, validate=validate.Range(1, 1000))
    cursor = Cursor()


class HoldRow(Schema):
    hold_id = fields.String()
    target_kind = fields.String()
    target_id = fields.String()
    subject = fields.String()
    authority = fields.String()
    reason = fields.String()
    placed_by = fields.String()
    placed_at = fields.String()
    released_by = fields.String(allow_none=True)
    released_at = fields.String(allow_none=True)
    status = fields.String()


class HoldPage(Schema):
    items = fields.List(fields.Nested(HoldRow))
    next_cursor = NextCursor()


class HoldState(Schema):
    id = fields.String()
    version = fields.Integer()
    target_kind = fields.String()
    target_id = fields.String()
    subject = fields.String()
    authority = fields.String()
    reason = fields.String()
    status = fields.String()


class DispositionCreate(Strict):
    subject = fields.UUID(required=True, metadata={"description": "the data subject (customer id)"})
    reason = Text(500, load_default=None)


class DispositionState(Schema):
    id = fields.String()
    version = fields.Integer()
    subject = fields.String()
    status = fields.String()
    as_of = fields.String()
    proposer = fields.String()
    approver = fields.String(allow_none=True)
    records = fields.List(fields.Nested(ReportRecord))
    certificate = fields.Dict(allow_none=True, metadata={"description": "the destruction certificate, once executed"})


def _hold(h: Any) -> tuple[dict[str, Any], int, dict[str, str]]:
    return ({"id": str(h.id), "version": h.version, "target_kind": h.target_kind, "target_id": h.target_id,
             "subject": h.subject, "authority": h.authority, "reason": h.reason, "status": h.status}, 200,
            {"ETag": f'"{h.version}"'})


def _disposition(d: Any) -> tuple[dict[str, Any], int, dict[str, str]]:
    return ({"id": str(d.id), "version": d.version, "subject": d.subject, "status": d.status, "as_of": d.as_of,
             "proposer": d.proposer, "approver": d.approver, "records": d.records, "certificate": d.certificate},
            200, {"ETag": f'"{d.version}"'})


def _placed(h: Any) -> tuple[dict[str, Any], int, dict[str, str]]:
    body, _, headers = _hold(h)
    return body, 201, {**headers, "Location": f"/holds/{h.id}"}


def _proposed(d: Any) -> tuple[dict[str, Any], int, dict[str, str]]:
    body, _, headers = _disposition(d)
    return body, 201, {**headers, "Location": f"/dispositions/{d.id}"}


def _page(rows: list[dict[str, Any]], limit: int, list_name: str) -> dict[str, Any]:
    """``limit`` rows of ``limit + 1`` fetched, and the cursor of the next page if there is one."""
    page = rows[:limit]
    return {"items": page, "next_cursor": pagination.next_page(list_name, page[-1]["seq"] if len(rows) > limit
                                                               else None)["next_cursor"]}


# -- routes ---------------------------------------------------------------------------------------
def register_retention(api: Api) -> None:
    retention = Blueprint("retention", __name__, url_prefix="/retention", description="Retention schedule")
    holds = Blueprint("holds", __name__, url_prefix="/holds", description="Legal holds")
    dispositions = Blueprint("dispositions", __name__, url_prefix="/dispositions",
                             description="Authorised destruction of a data subject's personal data")

    @retention.route("/records", endpoint="records")
    @retention.arguments(RecordQuery, location="query", unknown=RAISE)
    @retention.response(200, RecordPage)
    @retention.doc(summary="Records with class, retention trigger, due date, holds and destruction")
    def records(query):  # noqa: ANN001, ANN202
        subject = str(query["subject"]) if query["subject"] else None
        rows = service().records(subject=subject, due_before=query["due_before"], limit=query["limit"] + 1,
                                 after=pagination.after(query, "retention-records"))
        return _page(rows, query["limit"], "retention-records")

    @retention.route("/report", endpoint="report")
    @retention.arguments(ReportQuery, location="query", unknown=RAISE)
    @retention.response(200, Report)
    @retention.doc(summary="Dry run: whose personal data would be destroyed at as_of, and why not for others")
    def report(query):  # noqa: ANN001, ANN202
        return {"as_of": query["as_of"].isoformat(), "items": service().report(query["as_of"])}

    @holds.route("", methods=["GET"], endpoint="list")
    @holds.arguments(HoldQuery, location="query", unknown=RAISE)
    @holds.response(200, HoldPage)
    def list_holds(query):  # noqa: ANN001, ANN202
        subject = str(query["subject"]) if query["subject"] else None
        rows = service().holds(subject=subject, active_only=query["active"], limit=query["limit"] + 1,
                               after=pagination.after(query, "holds"))
        return _page(rows, query["limit"], "holds")

    @holds.route("", methods=["POST"], endpoint="place")
    @holds.arguments(HoldCreate)
    @holds.response(201, HoldState)
    @answers(lambda written, args: _placed(written_new("hold", written)))
    def place(args):  # noqa: ANN001, ANN202
        return _placed(service().place_hold(context(reason=args["reason"]), target_kind=args["target_kind"],
                                            target_id=str(args["target_id"]), authority=args["authority"]))

    @holds.route("/<uuid:hold_id>", endpoint="get")
    @holds.response(200, HoldState)
    def get_hold(hold_id):  # noqa: ANN001, ANN202
        return _hold(service().ledger.get("hold", hold_id))

    @holds.route("/<uuid:hold_id>/release", methods=["POST"], endpoint="release")
    @holds.arguments(Reason)
    @holds.response(200, HoldState)
    @answers(lambda written, args, hold_id: _hold(written_state("hold", written, hold_id)))
    def release(args, hold_id):  # noqa: ANN001, ANN202
        return _hold(service().release_hold(context(reason=args["reason"]), str(hold_id)))

    @dispositions.route("", methods=["POST"], endpoint="propose")
    @dispositions.arguments(DispositionCreate)
    @dispositions.response(201, DispositionState)
    @answers(lambda written, args: _proposed(written_new("disposition", written)))
    def propose(args):  # noqa: ANN001, ANN202
        return _proposed(service().propose(context(reason=args["reason"]), str(args["subject"])))

    @dispositions.route("/<uuid:disposition_id>", endpoint="get")
    @dispositions.response(200, DispositionState)
    def get_disposition(disposition_id):  # noqa: ANN001, ANN202
        return _disposition(service().ledger.get("disposition", disposition_id))

    for step in ("approve", "reject", "execute"):
        _step(dispositions, step)

    for blp in (retention, holds, dispositions):
        api.register_blueprint(blp)


def _step(blp: Blueprint, step: str) -> None:
    @blp.route(f"/<uuid:disposition_id>/{step}", methods=["POST"], endpoint=step)
    @blp.arguments(Reason)
    @blp.response(200, DispositionState)
    @blp.doc(summary=f"{step.capitalize()} a disposition")
    @answers(lambda written, args, disposition_id: _disposition(written_state("disposition", written, disposition_id)))
    def act(args, disposition_id):  # noqa: ANN001, ANN202
        return _disposition(getattr(service(), step)(context(reason=args["reason"]), str(disposition_id)))
