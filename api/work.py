"""Work queues over HTTP.

``GET /work/unregistered-contacts``, ``/work/open-feedback``, ``/work/complaints`` (action ``work.queues``): unregistered contacts, open feedback by owner,
complaints by handler (``projections.work_queues``), keyset-paginated with an opaque cursor and
``Link: rel="next"`` like every list. A caller whose grant has scope ``own`` lists only their own
items (``owner=<you>``: ``api.permissions.SCOPED_LISTS``), except the shared intake queue of
unregistered contacts, which has no owner and which any agent may take from.
"""

from __future__ import annotations

from flask_smorest import Api
from marshmallow import RAISE, Schema, fields, validate
from werkzeug.exceptions import BadRequest

from api.arguments import Blueprint
from api.openapi import IF_NONE_MATCH, reads_headers
from api.read_models import conditional, read_models
from api.schemas import Cursor, Name, NextCursor, Strict
from projections.queries import BadCursor
from projections.work_queues import QUEUES, list_work

ACTION = "work.queues"


class WorkQuery(Strict):
    owner = Name(load_default=None, metadata={"description": "only this owner's items (agents: themselves)"})
    cursor = Cursor()
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class WorkItem(Schema):
    queue, case_id, owner, kind, channel, status = (fields.String(), fields.String(), fields.String(),
                                                    fields.String(), fields.String(), fields.String())
    seq = fields.Integer()
    since, updated_at = fields.String(), fields.String()


class WorkPage(Schema):
    items = fields.List(fields.Nested(WorkItem))
    next_cursor = NextCursor()
    position = fields.Integer()


def register_work(api: Api) -> None:
    blp = Blueprint("work", __name__, url_prefix="/work", description="Work queues (ids and facts only)")
    for queue in QUEUES:
        _queue_route(blp, queue)
    api.register_blueprint(blp)


def _queue_route(blp: Blueprint, queue: str) -> None:
    @blp.route(f"/{queue.replace('_', '-')}", endpoint=queue)
    @blp.arguments(WorkQuery, location="query", unknown=RAISE)
    @blp.response(200, WorkPage)
    @blp.doc(summary=f"Work queue {queue.replace('_', ' ')}, oldest first, keyset-paginated")
    @reads_headers(IF_NONE_MATCH)
    def page(query):
        live = read_models()
        position = live.fresh("work_queues")
        try:
            body = list_work(live.runner.db, queue, owner=query["owner"], cursor=query["cursor"], limit=query["limit"])
        except BadCursor as e:
            raise BadRequest(str(e)) from None
        return conditional({**body, "position": position}, WorkPage)
