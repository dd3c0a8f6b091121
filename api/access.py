"""The security audit log over HTTP: who read whose personal data unmasked, which fields, and why."""

from __future__ import annotations

from flask import current_app
from flask_smorest import Api
from marshmallow import RAISE, Schema, fields, validate

from api import pagination
from api.arguments import Blueprint
from api.schemas import BIGINT, Cursor, Name, NextAfter, NextCursor, Strict

blp = Blueprint("access", __name__, url_prefix="/access-events", description="Security audit log (access events)")


class AccessQuery(Strict):
    cursor = Cursor()
    after = fields.Integer(load_default=0, validate=validate.Range(min=0, max=BIGINT - 1),
                           metadata={"description": "deprecated: use cursor", "deprecated": True})
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))
    subject = fields.UUID(load_default=None, metadata={"description": "only disclosures of this data subject"})
    actor = Name(load_default=None, metadata={"description": "only disclosures to this actor"})


class AccessEntry(Schema):
    position = fields.Integer(metadata={"description": "position in the ledger's log"})
    id = fields.String()
    subject = fields.String(metadata={"description": "the data subject (customer id) whose data was read"})
    fields_ = fields.List(fields.String(), data_key="fields", metadata={"description": "personal fields disclosed"})
    resource = fields.String(metadata={"description": "method and path of the request"})
    reason = fields.String(metadata={"description": "the reason stated in X-Access-Reason"})
    actor_id = fields.String()
    actor_role = fields.String()
    request_id = fields.String()
    occurred_at = fields.String()


class AccessPage(Schema):
    items = fields.List(fields.Nested(AccessEntry))
    next_cursor = NextCursor()
    next_after = NextAfter()


@blp.route("", endpoint="events")
@blp.arguments(AccessQuery, location="query", unknown=RAISE)
@blp.response(200, AccessPage)
@blp.doc(summary="Unmasked reads of personal data, in log order (auditors, compliance officers, administrators)")
def access_events(query):  # noqa: ANN001, ANN201
    subject = str(query["subject"]) if query["subject"] else None
    items, next_after = current_app.extensions["caseledger.access_log"].entries(
        after=pagination.after(query, "access-events"), limit=query["limit"], subject=subject, actor=query["actor"])
    return {"items": [{**item, "fields_": item["fields"]} for item in items],
            **pagination.next_page("access-events", next_after)}


def register_access(api: Api) -> None:
    api.register_blueprint(blp)
