"""Incidents over HTTP: report one, list them, read one, and drive it (level, timeline, recovery,
closure). Actions: ``incident.create`` / ``incident.read`` / ``incident.<action>`` of
``domain/permissions.toml`` (the ``incidents`` blueprint maps to kind ``incident`` in
``api.permissions``), granted at scope ``all`` only: incidents belong to nobody, so the path names
``incident_id`` rather than a record to check a scope against. The list reads the ``incidents``
read model, keyset-paginated like every list."""

from __future__ import annotations

from typing import Any

from flask_smorest import Api
from marshmallow import RAISE, Schema, fields, validate
from werkzeug.exceptions import BadRequest

from api.arguments import Blueprint
from api.idempotency import answers
from api.openapi import IF_MATCH, IF_NONE_MATCH, reads_headers
from api.read_models import conditional, read_models
from api.resources import context, expected_version, ledger, written_new, written_state
from api.schemas import (
    BIGINT,
    ActionSchema,
    Cursor,
    Name,
    NextCursor,
    StateSchema,
    Strict,
    Text,
    Vocab,
)
from domain.incident import IncidentKind
from ledger.kinds import ACTIONS
from projections.incidents import FILTERS, list_incidents
from projections.queries import BadCursor
from services.incidents import report_incident

KIND = "incident"


class IncidentState(StateSchema):
    incident_kind, level, started_at = fields.String(), fields.String(), fields.String()
    affected_customers, timeline_entries = fields.Integer(), fields.Integer()
    recovered_at = fields.String(allow_none=True)


class IncidentReport(Strict):
    incident_kind = fields.String(required=True, validate=validate.OneOf(sorted(IncidentKind.ALL)))
    level = Vocab("incident_level", required=True)
    started_at = fields.AwareDateTime(load_default=None, metadata={"description": "when the impact began (default: now)"})
    affected_customers = fields.Integer(load_default=0, validate=validate.Range(min=0, max=BIGINT))
    summary = Text(2000, load_default=None, metadata={"description": "free text; stored as the incident's personal part"})


class LevelChange(ActionSchema):
    level = Vocab("incident_level", required=True)


class TimelineNote(ActionSchema):
    step = Name(required=True, metadata={"description": "detected, contained, customers_notified, rectified…"})
    details = Text(2000, load_default=None)


class Closing(ActionSchema):
    resolution = Text(2000, load_default=None)


ACTION_SCHEMAS = {"change_level": LevelChange, "note": TimelineNote, "recover": ActionSchema, "close": Closing}
#: Summaries of the actions, written for people (a template gave "Change level an incident").
ACTION_SUMMARIES = {"change_level": "Raise or lower an incident's level (policy vocabulary incident_level)",
                    "note": "Add a step to an incident's timeline (detected, contained, customers notified…)",
                    "recover": "Record that the service has recovered from an incident",
                    "close": "Close an incident, with how it was resolved"}


class IncidentListQuery(Strict):
    status = fields.List(fields.String(validate=validate.OneOf(["reported", "recovered", "closed"])), load_default=None)
    incident_kind = fields.List(fields.String(validate=validate.OneOf(sorted(IncidentKind.ALL))), load_default=None)
    level = fields.List(Vocab("incident_level"), load_default=None)
    cursor = Cursor()
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class IncidentRow(Schema):
    incident_id, incident_kind, level, status = fields.String(), fields.String(), fields.String(), fields.String()
    seq, version = fields.Integer(), fields.Integer()
    started_at, reported_at = fields.String(), fields.String()
    recovered_at, closed_at = fields.String(allow_none=True), fields.String(allow_none=True)
    recovery_seconds = fields.Integer(allow_none=True)
    handling_seconds = fields.Integer(allow_none=True)
    affected_customers, timeline_entries = fields.Integer(), fields.Integer()


class IncidentPage(Schema):
    items = fields.List(fields.Nested(IncidentRow))
    next_cursor = NextCursor()
    position = fields.Integer()


def _state(incident: Any) -> tuple[dict[str, Any], int, dict[str, str]]:
    data = {k: v for k, v in vars(incident).items() if not k.startswith("_")}
    data.update(id=incident.id, version=incident.version, created_on=incident.created_on,
                modified_on=incident.modified_on)
    return data, 200, {"ETag": f'"{incident.version}"'}


def _created(incident: Any) -> tuple[dict[str, Any], int, dict[str, str]]:
    data, _, headers = _state(incident)
    headers["Location"] = f"/incidents/{incident.id}"
    return data, 201, headers


def _action(blp: Blueprint, action: str) -> None:
    @blp.route(f"/<uuid:incident_id>/{action.replace('_', '-')}", methods=["POST"], endpoint=action)
    @blp.arguments(ACTION_SCHEMAS[action])
    @blp.response(200, IncidentState)
    @blp.doc(summary=ACTION_SUMMARIES[action])
    @answers(lambda written, args, incident_id: _state(written_state(KIND, written, incident_id)))
    @reads_headers(IF_MATCH)
    def act(args, incident_id):
        ctx = context(reason=args.pop("reason", None))
        return _state(ledger().act(KIND, incident_id, action, ctx, args, expected_version()))


def register_incidents(api: Api) -> None:
    blp = Blueprint("incidents", __name__, url_prefix="/incidents",
                    description="Incidents: service faults, security incidents, customer-data leaks (004 §4.3)")

    @blp.route("", methods=["POST"], endpoint="create")
    @blp.arguments(IncidentReport)
    @blp.response(201, IncidentState)
    @blp.doc(summary="Report an incident")
    @answers(lambda written, args: _created(written_new(KIND, written)))
    def create(args):
        return _created(report_incident(ledger(), context(), **args))

    @blp.route("", methods=["GET"], endpoint="list")
    @blp.arguments(IncidentListQuery, location="query", unknown=RAISE)
    @blp.response(200, IncidentPage)
    @blp.doc(summary="Incidents in report order, filtered, keyset-paginated (ids and facts only)")
    @reads_headers(IF_NONE_MATCH)
    def incidents(query):
        live = read_models()
        position = live.fresh("incidents")
        criteria = {name: [str(v) for v in query[name]] for name in FILTERS if query.get(name)}
        try:
            page = list_incidents(live.runner.db, criteria, cursor=query["cursor"], limit=query["limit"])
        except BadCursor as e:
            raise BadRequest(str(e)) from None
        return conditional({**page, "position": position}, IncidentPage)

    @blp.route("/<uuid:incident_id>", endpoint="get")
    @blp.response(200, IncidentState)
    @blp.doc(summary="Read one service incident and its handling so far")
    def get(incident_id):
        return _state(ledger().get(KIND, incident_id))

    for action in sorted(ACTIONS[KIND]):
        _action(blp, action)
    api.register_blueprint(blp)
