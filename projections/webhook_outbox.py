"""The webhook outbox: one row per (subscription, event) to deliver, fed from the log exactly once.

A read model like the others (``projections/README.md``): the runner applies every event once and
moves the position in the same transaction as the rows, so no event is queued twice or missed,
and a rebuild queues the same rows (same digest) as following the log did. What the outbox
holds is decided by the log alone:

- ``rm_webhook_subscription``: each subscription's matching rules (event types, filter, role),
  from its ``WebhookSubscription`` events, and the log position it was created at;
- ``rm_webhook_matcher``: one row holding the rules of every active subscription, so matching an
  event costs one cached row, not a query;
- ``rm_webhook_outbox``: per matching event and subscription, the delivery id (a UUID derived
  from both, so it is the same after a rebuild: the receiver's idempotency key), the event's
  type, record and version, and its log position. A subscription gets the events after the one
  that created it, never earlier ones.

No personal data is queued: like every read model this one reads events with their personal parts
sealed. The delivery (``services.webhooks``) loads the event itself and masks it for the
subscription's role when it sends it, so a customer's data erased (crypto-shredded) after
queuing is never sent. Whether a delivery was made lives in the delivery worker's own table,
not here: that is not derived from the log.

Subscription events themselves are never delivered (a subscriber is not told of subscriptions).
An event that cannot be decoded is not queued (no record id to give); ``event_counts`` shows it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID, uuid5

from domain.webhooks import WebhookSubscription, matches_filter, matches_type
from projections.decode import Undecodable
from projections.jsontext import json_writer
from projections.rowcache import RowCache
from projections.runtime import Projection
from projections.store import Codec, Table

#: Namespace of delivery ids: uuid5(namespace, "<subscription id>:<log position>").
DELIVERY_NAMESPACE = UUID("3d0f7a8e-5b1c-4f6e-9a27-81c4b0e6d5f3")
_JSON = Codec(encode=json_writer(sort_keys=True, ensure_ascii=False, separators=(",", ":")), decode=json.loads)
_ENVELOPE = {"originator_id", "originator_version", "timestamp", "originator_topic", "meta", "personal"}
_OWN_EVENTS = WebhookSubscription.__qualname__ + "."

SUBSCRIPTION_TABLE = Table(
    "rm_webhook_subscription",
    columns=(("subscription_id", "TEXT"), ("created_position", "BIGINT"), ("status", "TEXT"), ("role", "TEXT"),
             ("event_types", "TEXT"), ("filter", "TEXT"), ("version", "BIGINT")),
    key=("subscription_id",), codecs=(("event_types", _JSON), ("filter", _JSON)))
MATCHER_TABLE = Table("rm_webhook_matcher", columns=(("name", "TEXT"), ("rules", "TEXT")), key=("name",),
                      codecs=(("rules", _JSON),))
OUTBOX_TABLE = Table(
    "rm_webhook_outbox",
    columns=(("delivery_id", "TEXT"), ("subscription_id", "TEXT"), ("position", "BIGINT"), ("event_type", "TEXT"),
             ("aggregate_id", "TEXT"), ("version", "BIGINT")),
    key=("delivery_id",), indexes=(("position",), ("subscription_id", "position")))
_ALL = "active"


def delivery_id(subscription_id: str, position: int) -> str:
    return str(uuid5(DELIVERY_NAMESPACE, f"{subscription_id}:{position}"))


def event_type(event: Any) -> str:
    """``Ticket.Classified``: what subscriptions name."""
    return type(event).__qualname__


class WebhookOutbox(Projection):
    name = "webhook_outbox"
    version = 1
    rebuild_weight = 1
    tables = (SUBSCRIPTION_TABLE, MATCHER_TABLE, OUTBOX_TABLE)

    def resolve(self, cls: type) -> Callable[..., None] | None:
        # Every event may match a subscription ("*"), so every class has a handler.
        own = getattr(self, "on_" + cls.__qualname__.replace(".", "_"), None)
        if own is not None:
            return own
        return None if cls.__qualname__.startswith(_OWN_EVENTS) else self._queue

    def _resolve(self, cls: type) -> Callable[..., None] | None:
        return (lambda *_: None) if cls is Undecodable else self.resolve(cls)  # see the module docstring

    def apply_batch(self, events: Sequence[tuple[int, str, Any]], rows: RowCache) -> None:
        """As any read model's, except that a batch that neither finds a subscription nor makes one
        changes nothing (every event would be queued for no one): it is not looked at event by event."""
        if not self._rules(rows) and not any(cls.__qualname__.startswith(_OWN_EVENTS)
                                             for cls in {type(item[2]) for item in events}):
            return
        super().apply_batch(events, rows)

    # -- subscriptions ---------------------------------------------------------------------------
    def on_WebhookSubscription_Created(self, e: Any, position: int, rows: RowCache) -> None:
        row = {"subscription_id": str(e.originator_id), "created_position": position, "status": "active",
               "role": e.role, "event_types": list(e.event_types), "filter": dict(e.filter),
               "version": e.originator_version}
        rows.put(SUBSCRIPTION_TABLE.name, row)
        self._set_rules(rows, row)

    def on_WebhookSubscription_Changed(self, e: Any, position: int, rows: RowCache) -> None:
        row = self._subscription(rows, e)
        row = {**row, **{k: v for k, v in e.changes.items() if k in ("role", "event_types", "filter")},
               "version": e.originator_version}
        rows.put(SUBSCRIPTION_TABLE.name, row)
        self._set_rules(rows, row)

    def on_WebhookSubscription_Removed(self, e: Any, position: int, rows: RowCache) -> None:
        row = {**self._subscription(rows, e), "status": "removed", "version": e.originator_version}
        rows.put(SUBSCRIPTION_TABLE.name, row)
        rules = dict(self._rules(rows))
        rules.pop(row["subscription_id"], None)
        rows.put(MATCHER_TABLE.name, {"name": _ALL, "rules": rules})

    @staticmethod
    def _subscription(rows: RowCache, e: Any) -> dict[str, Any]:
        row = rows.get(SUBSCRIPTION_TABLE.name, str(e.originator_id))
        if row is None:
            raise LookupError(f"rm_webhook_subscription has no row for {e.originator_id}; its Created event was not seen")
        return row

    @staticmethod
    def _rules(rows: RowCache) -> dict[str, Any]:
        found = rows.peek(MATCHER_TABLE.name, _ALL)
        return found["rules"] if found else {}

    def _set_rules(self, rows: RowCache, row: dict[str, Any]) -> None:
        rules = dict(self._rules(rows))
        rules[row["subscription_id"]] = {"event_types": row["event_types"], "filter": row["filter"],
                                         "after": row["created_position"]}
        rows.put(MATCHER_TABLE.name, {"name": _ALL, "rules": rules})

    # -- every other event -----------------------------------------------------------------------
    def _queue(self, e: Any, position: int, rows: RowCache) -> None:
        rules = self._rules(rows)
        if not rules:
            return
        kind = event_type(e)
        fields: dict[str, Any] | None = None
        for subscription_id, rule in sorted(rules.items()):
            if position <= rule["after"] or not matches_type(rule["event_types"], kind):
                continue
            if rule["filter"]:
                if fields is None:
                    fields = {k: v for k, v in vars(e).items() if k not in _ENVELOPE}
                    fields["aggregate_id"] = str(e.originator_id)
                if not matches_filter(rule["filter"], fields):
                    continue
            rows.put(OUTBOX_TABLE.name, {"delivery_id": delivery_id(subscription_id, position),
                                         "subscription_id": subscription_id, "position": position,
                                         "event_type": kind, "aggregate_id": str(e.originator_id),
                                         "version": e.originator_version})
