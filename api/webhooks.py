"""Webhooks over HTTP, for administrators (``webhooks.manage``): subscriptions, deliveries, dead letters, replay.

Handlers parse, call :mod:`services.webhooks` / :mod:`services.webhook_delivery`, and return. The
deliveries themselves are made by ``caseledger webhooks deliver`` (the Procfile's ``webhooks``
process), not by the API.

The answer to creating a subscription is the only place its secret is ever shown. It is
therefore never kept by the idempotency store: a create with an ``Idempotency-Key`` is refused
(400); a client that lost the answer lists the subscriptions, removes the one it made and
creates it again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import current_app, request
from flask_smorest import Api
from marshmallow import RAISE, Schema, fields, validate
from werkzeug.exceptions import BadRequest, NotFound

from api.arguments import Blueprint
from api.idempotency import answers
from api.openapi import IF_MATCH, reads_headers
from api.pagination import after as page_after
from api.pagination import next_page
from api.read_models import read_models
from api.resources import context, expected_version, written_state
from api.schemas import Strict
from services.webhook_delivery import STATUSES, WebhookDelivery
from services.webhooks import KIND, WebhookSubscriptions, subscription_view

#: Endpoint → action of domain/permissions.toml (merged into api.permissions.ACTIONS).
ACTIONS = {f"webhooks.{name}": "webhooks.manage" for name in (
    "subscriptions", "subscribe", "subscription", "change", "remove", "deliveries", "dead_letters", "replay")}
LIST_NAME = "webhook-deliveries"
SUBSCRIPTION_LIST = "webhook-subscriptions"
_FILTER_VALUES = fields.List(fields.Raw(), validate=validate.Length(1, 100))


def subscriptions() -> WebhookSubscriptions:
    return WebhookSubscriptions(current_app.extensions["caseledger"], current_app.extensions["caseledger.access"])


def delivery() -> WebhookDelivery:
    extensions = current_app.extensions
    if "caseledger.webhook_delivery" not in extensions:
        extensions["caseledger.webhook_delivery"] = WebhookDelivery(extensions["caseledger"],
                                                                    extensions["caseledger.access"])
    return extensions["caseledger.webhook_delivery"]


# -- contract --------------------------------------------------------------------------------------
class SubscriptionCreate(Strict):
    url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False, validate=validate.Length(max=2000),
                     metadata={"description": "where deliveries are POSTed", "example": "https://ops.example.com/hooks"})
    event_types = fields.List(fields.String(), required=True, validate=validate.Length(1, 50),
                              metadata={"description": "'*', 'Ticket.*' or an event type such as 'Ticket.Classified'",
                                        "example": ["Ticket.*", "Complaint.Escalated"]})
    filter = fields.Dict(keys=fields.String(), values=_FILTER_VALUES, load_default=None,
                         metadata={"description": "event field → the values wanted (all fields must match)",
                                   "example": {"priority": ["P1"]}})
    role = fields.String(required=True, metadata={"description": "the role whose permissions and masking the "
                                                                 "deliveries get", "example": "team_lead"})


class SubscriptionChange(Strict):
    url = fields.Url(schemes={"http", "https"}, require_tld=False, validate=validate.Length(max=2000))
    event_types = fields.List(fields.String(), validate=validate.Length(1, 50))
    filter = fields.Dict(keys=fields.String(), values=_FILTER_VALUES, allow_none=True)
    role = fields.String()


class RemoveBody(Strict):
    """Nothing to say (an empty JSON object): the body of every POST of this API is JSON."""


class SubscriptionState(Schema):
    id = fields.String()
    url = fields.String()
    event_types = fields.List(fields.String())
    filter = fields.Dict()
    role = fields.String()
    status = fields.String(metadata={"description": "active or removed"})
    version = fields.Integer()


class SubscriptionCreated(SubscriptionState):
    secret = fields.String(metadata={"description": "the signing secret: shown only in this answer"})


class SubscriptionPage(Schema):
    items = fields.List(fields.Nested(SubscriptionState))
    next_cursor = fields.String(allow_none=True)


class SubscriptionQuery(Strict):
    cursor = fields.String(load_default=None)
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class DeliveryQuery(Strict):
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    subscription_id = fields.UUID(load_default=None)
    cursor = fields.String(load_default=None)
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class DeadLetterQuery(Strict):
    subscription_id = fields.UUID(load_default=None)
    cursor = fields.String(load_default=None)
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))


class DeliveryRow(Schema):
    delivery_id = fields.String(metadata={"description": "also the Idempotency-Key the receiver gets"})
    subscription_id = fields.String()
    position = fields.Integer()
    event_type = fields.String()
    aggregate_id = fields.String()
    version = fields.Integer()
    status = fields.String(metadata={"description": ", ".join(STATUSES)})
    failures = fields.Integer()
    next_attempt_at = fields.String(allow_none=True)
    enrolled_at = fields.String(allow_none=True)
    delivered_at = fields.String(allow_none=True)
    last_status = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)


class DeliveryPage(Schema):
    items = fields.List(fields.Nested(DeliveryRow))
    next_cursor = fields.String(allow_none=True)


# -- routes ----------------------------------------------------------------------------------------
def register_webhooks(api: Api) -> None:
    blp = Blueprint("webhooks", __name__, url_prefix="/webhooks",
                    description="Webhook subscriptions of ops apps, their deliveries and the dead-letter list")
    _subscription_routes(blp)
    _delivery_routes(blp)
    api.register_blueprint(blp)


def _subscription_routes(blp: Blueprint) -> None:
    @blp.route("/subscriptions", endpoint="subscriptions")
    @blp.arguments(SubscriptionQuery, location="query", unknown=RAISE)
    @blp.response(200, SubscriptionPage)
    @blp.doc(summary="List the active webhook subscriptions, oldest first")
    def list_subscriptions(query):
        read_models().fresh()
        limit = query["limit"]
        rows = subscriptions().list(read_models().runner.db, after=page_after(query, SUBSCRIPTION_LIST),
                                    limit=limit + 1)
        last = rows[limit - 1][0] if len(rows) > limit else None
        return {"items": [subscription_view(s) for _, s in rows[:limit]],
                "next_cursor": next_page(SUBSCRIPTION_LIST, last)["next_cursor"]}

    @blp.route("/subscriptions", methods=["POST"], endpoint="subscribe")
    @blp.arguments(SubscriptionCreate)
    @blp.response(201, SubscriptionCreated)
    @blp.doc(summary="Subscribe a URL to events (the answer shows the signing secret, once)",
             description="Deliveries are POSTed with Caseledger-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "
                         "'<t>.' + body)> and Caseledger-Delivery / Idempotency-Key: the delivery id. No "
                         "Idempotency-Key on this request: its answer holds the secret, which is never stored.")
    def subscribe(body):
        if request.headers.get("Idempotency-Key") is not None:
            raise BadRequest("creating a webhook subscription takes no Idempotency-Key: its answer holds the secret, "
                             "which is never stored; if an answer is lost, list, remove and create again")
        subscription, secret = subscriptions().create(context(), url=body["url"], event_types=body["event_types"],
                                                      role=body["role"], filter=body.get("filter"))
        headers = {"ETag": f'"{subscription.version}"', "Location": f"/webhooks/subscriptions/{subscription.id}"}
        return {**subscription_view(subscription), "secret": secret}, 201, headers

    @blp.route("/subscriptions/<uuid:subscription_id>", endpoint="subscription")
    @blp.response(200, SubscriptionState)
    @blp.doc(summary="Read one webhook subscription (never its secret)")
    def get_subscription(subscription_id):
        return _state(subscriptions().get(subscription_id))

    @blp.route("/subscriptions/<uuid:subscription_id>/change", methods=["POST"], endpoint="change")
    @blp.arguments(SubscriptionChange)
    @blp.response(200, SubscriptionState)
    @blp.doc(summary="Change a subscription's URL, event types, filter or role")
    @answers(lambda written, body, subscription_id: _state(written_state(KIND, written, subscription_id)))
    @reads_headers(IF_MATCH)
    def change(body, subscription_id):
        changed = subscriptions().change(context(), subscription_id, dict(body), expected_version())
        return _state(changed)

    @blp.route("/subscriptions/<uuid:subscription_id>/remove", methods=["POST"], endpoint="remove")
    @blp.arguments(RemoveBody)
    @blp.response(200, SubscriptionState)
    @blp.doc(summary="Remove a subscription (its queued deliveries are cancelled)")
    @answers(lambda written, body, subscription_id: _state(written_state(KIND, written, subscription_id)))
    @reads_headers(IF_MATCH)
    def remove(body, subscription_id):
        removed = subscriptions().remove(context(), subscription_id, expected_version())
        return _state(removed)


def _delivery_routes(blp: Blueprint) -> None:
    @blp.route("/deliveries", endpoint="deliveries")
    @blp.arguments(DeliveryQuery, location="query", unknown=RAISE)
    @blp.response(200, DeliveryPage)
    @blp.doc(summary="List webhook deliveries in log order, with their status and last failure")
    def deliveries(query):
        return _page(query, query.get("status"))

    @blp.route("/dead-letters", endpoint="dead_letters")
    @blp.arguments(DeadLetterQuery, location="query", unknown=RAISE)
    @blp.response(200, DeliveryPage)
    @blp.doc(summary="List the dead-letter deliveries: those that failed every attempt")
    def dead_letters(query):
        return _page(query, "dead")

    @blp.route("/deliveries/<uuid:delivery_id>/replay", methods=["POST"], endpoint="replay")
    @blp.response(200, DeliveryRow)
    @blp.doc(summary="Send a dead or withheld delivery again (pending, due now)")
    def replay(delivery_id):
        row, replayed = delivery().replay(str(delivery_id))
        if row is None:
            raise NotFound(f"no webhook delivery {delivery_id}")
        if not replayed:
            raise BadRequest(f"delivery {delivery_id} is {row['status']}: only dead or withheld ones are replayed")
        return _row(row)


def _state(subscription: Any) -> tuple[dict[str, Any], int, dict[str, str]]:
    """A subscription as answered, with its version as the ETag (for If-Match)."""
    return subscription_view(subscription), 200, {"ETag": f'"{subscription.version}"'}


def _page(query: dict[str, Any], status: str | None) -> dict[str, Any]:
    """Whole log positions per page (a position's deliveries to several subscriptions stay together),
    so a page may hold a few more than ``limit``; ``next_cursor`` continues after its last position."""
    worker = delivery()
    worker.refresh()  # what the outbox holds is listed, sent or not
    subscription = str(query["subscription_id"]) if query.get("subscription_id") else None
    start = page_after(query, LIST_NAME)
    limit = query["limit"]
    rows = worker.deliveries(status=status, subscription_id=subscription, after=start, limit=limit + 1)
    last = None
    if len(rows) > limit:  # one more than a page: there is a next one
        rows = rows[:limit]
        last = rows[-1]["position"]
        rows += worker.deliveries(status=status, subscription_id=subscription,
                                  after=(last, rows[-1]["delivery_id"]), until=last)
    return {"items": [_row(r) for r in rows], "next_cursor": next_page(LIST_NAME, last)["next_cursor"]}


def _row(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row[k] for k in ("delivery_id", "subscription_id", "position", "event_type", "aggregate_id", "version",
                               "status", "failures", "last_status", "last_error")}
    out["next_attempt_at"] = _iso(row["next_attempt_ms"]) if row["status"] == "pending" else None
    out["enrolled_at"] = _iso(row["enrolled_ms"])
    out["delivered_at"] = _iso(row["delivered_ms"])
    return out


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat()
