"""Webhook subscriptions: an operations app asks to be told, by HTTP POST, of the events it cares about.

An administrator creates, changes and removes a subscription; each of these is an event, so who
pointed the ledger's events at which URL, and when, is part of the audit trail like every case
change. A subscription names

- ``url``: where deliveries are POSTed (``http`` or ``https``);
- ``event_types``: patterns over event types, an event type being the event class's qualified
  name (``Ticket.Classified``): an exact type, ``Ticket.*`` (every event of one kind of record) or
  ``*`` (everything the role may read);
- ``filter``: optional, event field → the values wanted (``{"priority": ["P1", "P2"]}``); an event
  matches when every filtered field is present in it with one of the values. ``aggregate_id``
  filters on the record the event belongs to;
- ``role``: the role of the access policy whose permissions and masking the deliveries get
  (``domain/permissions.toml``), exactly as a caller with a token of that role would see them;
- the delivery secret, sealed (encrypted with the ledger's key-encryption key) by the service that
  makes it: the log never holds a usable secret.

Which events are delivered, and how, is decided outside the domain (``projections.webhook_outbox``,
``services.webhooks``); this module only keeps what was asked and checks that it makes sense.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.context import Context
from domain.errors import InvalidValue, require

#: ``*``, ``Aggregate.*`` or ``Aggregate.Event`` (class names as Python spells them).
EVENT_TYPE_PATTERN = re.compile(r"^(\*|[A-Z][A-Za-z0-9]*\.(\*|[A-Z][A-Za-z0-9]*))$")
#: Field names a filter may use (event attributes are Python identifiers).
FILTER_FIELD = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
MAX_URL = 2000
MAX_PATTERNS = 50
MAX_FILTER_VALUES = 100


def check_url(url: Any) -> str:
    """An absolute http(s) URL with a host, without credentials in it (they would land in the log)."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise InvalidValue(f"a webhook URL is 1 to {MAX_URL} characters", rule="webhook.url")
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # both parse lazily, and raise on a malformed address or port
    except ValueError:
        raise InvalidValue("a webhook URL is an absolute http:// or https:// URL", rule="webhook.url") from None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidValue("a webhook URL is an absolute http:// or https:// URL", rule="webhook.url")
    if parts.username or parts.password:
        raise InvalidValue("a webhook URL carries no credentials (deliveries are signed instead)",
                           rule="webhook.url_credentials")
    return url


def check_event_types(patterns: Any) -> list[str]:
    if not isinstance(patterns, (list, tuple)) or not patterns or len(patterns) > MAX_PATTERNS:
        raise InvalidValue(f"a subscription names 1 to {MAX_PATTERNS} event types", rule="webhook.event_types")
    for pattern in patterns:
        if not isinstance(pattern, str) or not EVENT_TYPE_PATTERN.match(pattern):
            raise InvalidValue(f"{pattern!r} is not an event type: '*', 'Ticket.*' or 'Ticket.Classified'",
                               rule="webhook.event_types")
    return sorted(set(patterns))


def check_filter(wanted: Any) -> dict[str, list[Any]]:
    if wanted is None:
        return {}
    if not isinstance(wanted, dict):
        raise InvalidValue("a filter maps event fields to the values wanted", rule="webhook.filter")
    out: dict[str, list[Any]] = {}
    for field, values in wanted.items():
        if not isinstance(field, str) or not FILTER_FIELD.match(field):
            raise InvalidValue(f"{field!r} is not an event field name", rule="webhook.filter")
        if not isinstance(values, (list, tuple)) or not values or len(values) > MAX_FILTER_VALUES:
            raise InvalidValue(f"filter {field!r} lists 1 to {MAX_FILTER_VALUES} values", rule="webhook.filter")
        if not all(isinstance(v, (str, int, bool)) for v in values):
            raise InvalidValue(f"filter {field!r} values are text, numbers or booleans", rule="webhook.filter")
        out[field] = list(values)
    return out


def matches_type(patterns: Collection[str], event_type: str) -> bool:
    """Whether ``event_type`` (``Ticket.Classified``) is one of ``patterns``."""
    aggregate = event_type.partition(".")[0]
    return "*" in patterns or event_type in patterns or f"{aggregate}.*" in patterns


def matches_filter(wanted: dict[str, list[Any]], fields: dict[str, Any]) -> bool:
    """Whether every filtered field is in ``fields`` with one of its wanted values."""
    return all(name in fields and fields[name] in values for name, values in wanted.items())


class WebhookSubscription(Aggregate):
    @event("Created")
    def __init__(self, id: UUID, url: str, event_types: list[str], filter: dict[str, list[Any]], role: str,
                 secret_sealed: str, secret_key_id: str, meta: dict[str, Any]):
        self.url = url
        self.event_types = event_types
        self.filter = filter
        self.role = role
        self.secret_sealed = secret_sealed
        self.secret_key_id = secret_key_id
        self.status = "active"

    @classmethod
    def create(cls, *, id: UUID, url: str, event_types: list[str], filter: dict[str, list[Any]] | None, role: str,
               roles: Collection[str], secret_sealed: str, secret_key_id: str, policy_ref: str,
               ctx: Context) -> WebhookSubscription:
        return cls(id=id, url=check_url(url), event_types=check_event_types(event_types), filter=check_filter(filter),
                   role=_check_role(role, roles), secret_sealed=secret_sealed, secret_key_id=secret_key_id,
                   meta=ctx.meta(policy_ref))

    def change(self, *, changes: dict[str, Any], roles: Collection[str], policy_ref: str, ctx: Context) -> None:
        """Change the URL, event types, filter or role (only what ``changes`` names)."""
        require(self.status == "active", "a removed subscription cannot be changed", rule="webhook.removed")
        checked: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "url":
                checked[name] = check_url(value)
            elif name == "event_types":
                checked[name] = check_event_types(value)
            elif name == "filter":
                checked[name] = check_filter(value)
            elif name == "role":
                checked[name] = _check_role(value, roles)
            else:
                raise InvalidValue(f"a subscription has no changeable field {name!r}", rule="webhook.change")
        require(bool(checked), "a change names at least one of url, event_types, filter, role", rule="webhook.change")
        self._changed(checked, ctx.meta(policy_ref))

    @event("Changed")
    def _changed(self, changes: dict[str, Any], meta: dict[str, Any]) -> None:
        for name, value in changes.items():
            setattr(self, name, value)

    def remove(self, *, policy_ref: str, ctx: Context) -> None:
        require(self.status == "active", "the subscription was already removed", rule="webhook.remove_once")
        self._removed(ctx.meta(policy_ref))

    @event("Removed")
    def _removed(self, meta: dict[str, Any]) -> None:
        self.status = "removed"


def _check_role(role: Any, roles: Collection[str]) -> str:
    if role not in roles:
        raise InvalidValue(f"unknown role {role!r}; roles are {', '.join(sorted(roles))}", rule="webhook.role")
    return str(role)
