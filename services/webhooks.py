"""Webhook subscriptions (administrators manage them) and the signature every delivery carries.

Subscriptions are ``domain.webhooks.WebhookSubscription`` aggregates, saved with
``ledger.record``. Each has a secret of its own, made here (``whsec_`` + 256 random bits) and shown
once, when the subscription is created (or its secret rotated by creating a new subscription).
The log keeps it only sealed: encrypted with the ledger's key-encryption key (AES-256-GCM, bound
to the subscription id), which is never in the database, so a copy of the database cannot sign
deliveries; a new key-encryption key means new subscriptions.

**Signature** (what a receiver checks, :func:`verify_signature`): every delivery is a POST with

- ``Caseledger-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`` — the
  timestamp is signed with the body, so a captured delivery cannot be replayed later than the
  receiver's tolerance (5 minutes by default);
- ``Caseledger-Delivery`` and ``Idempotency-Key``: the delivery id, the same on every retry and
  after a read-model rebuild: at-least-once delivery, so a receiver drops ids it has processed.

Delivering, retrying and the dead-letter list are :mod:`services.webhook_delivery`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import AggregateCreated

from domain.context import Context
from domain.errors import InvalidValue
from domain.permissions import AccessPolicy
from domain.webhooks import WebhookSubscription
from ledger.errors import InvalidRequest, StaleVersion
from ledger.kinds import KINDS
from projections.store import ViewDatabase
from projections.webhook_outbox import SUBSCRIPTION_TABLE

SIGNATURE_HEADER = "Caseledger-Signature"
DELIVERY_HEADER = "Caseledger-Delivery"
EVENT_TYPE_HEADER = "Caseledger-Event-Type"
#: How old a signed timestamp a receiver accepts by default.
TOLERANCE_SECONDS = 300
KIND = "webhook_subscription"
_SEAL_SUBJECT = "webhook-secret:"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Caseledger-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: str, header: str | None, body: bytes, *, tolerance: float = TOLERANCE_SECONDS,
                     now: float | None = None) -> bool:
    """What a receiver does: the signature matches the body and the timestamp is recent."""
    if not header:
        return False
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).rpartition("v1=")[2]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def event_types_known() -> dict[str, str]:
    """Every event type a subscription may name (``Ticket.Classified``) → the kind of record it is of."""
    found: dict[str, str] = {}
    for kind, cls in KINDS.items():
        if cls is WebhookSubscription:
            continue  # never delivered (projections.webhook_outbox)
        events = {name: value for name, value in vars(cls).items()
                  if isinstance(value, type) and issubclass(value, cls.Event) and value is not cls.Event}
        # eventsourcing gives every aggregate a "Created" class; it is stored only where no
        # decorated __init__ names the creation event otherwise (Ticket.Received, ApiToken.Issued…).
        if sum(issubclass(value, AggregateCreated) for value in events.values()) > 1:
            events.pop("Created", None)
        for name in events:
            found[f"{cls.__qualname__}.{name}"] = kind
    return found


def kind_of_type(event_type: str) -> str | None:
    aggregate = event_type.partition(".")[0]
    return next((kind for kind, cls in KINDS.items() if cls.__qualname__ == aggregate), None)


class WebhookSubscriptions:
    """Create, change, remove and list subscriptions; unseal a subscription's secret to sign with."""

    def __init__(self, ledger: Any, access: AccessPolicy):
        self.ledger = ledger
        self.access = access

    # -- commands --------------------------------------------------------------------------------
    def create(self, ctx: Context, *, url: str, event_types: list[str], role: str,
               filter: dict[str, list[Any]] | None = None) -> tuple[WebhookSubscription, str]:
        """The new subscription and its secret (shown this once; the log keeps it sealed)."""
        self._check_types(event_types)
        subscription_id = uuid4()
        secret = "whsec_" + secrets.token_urlsafe(32)
        kek = self._kek()
        sealed = base64.b64encode(kek.wrap(_SEAL_SUBJECT + str(subscription_id), secret.encode())).decode()
        subscription = WebhookSubscription.create(
            id=subscription_id, url=url, event_types=list(event_types), filter=filter, role=role,
            roles=self.access.roles, secret_sealed=sealed, secret_key_id=kek.key_id, policy_ref=self.access.ref,
            ctx=ctx)
        self.ledger.record(subscription)
        return subscription, secret

    def change(self, ctx: Context, subscription_id: UUID | str, changes: dict[str, Any],
               expected_version: int | None = None) -> WebhookSubscription:
        if "event_types" in changes:
            self._check_types(changes["event_types"])
        subscription = self._for_command(subscription_id, expected_version)
        subscription.change(changes=changes, roles=self.access.roles, policy_ref=self.access.ref, ctx=ctx)
        self.ledger.record(subscription)
        return subscription

    def remove(self, ctx: Context, subscription_id: UUID | str,
               expected_version: int | None = None) -> WebhookSubscription:
        subscription = self._for_command(subscription_id, expected_version)
        subscription.remove(policy_ref=self.access.ref, ctx=ctx)
        self.ledger.record(subscription)
        return subscription

    # -- reading ---------------------------------------------------------------------------------
    def get(self, subscription_id: UUID | str) -> WebhookSubscription:
        return self.ledger.get(KIND, subscription_id)

    def list(self, db: ViewDatabase, *, include_removed: bool = False, after: int = 0,
             limit: int | None = None) -> list[tuple[int, WebhookSubscription]]:
        """Subscriptions in the order they were created, with the log position that created each
        (ids from the outbox read model, caught up by the caller): those created after ``after``,
        at most ``limit``."""
        sql = f"SELECT created_position, subscription_id FROM {SUBSCRIPTION_TABLE.name} WHERE created_position > ?"
        if not include_removed:
            sql += " AND status = 'active'"
        sql += " ORDER BY created_position"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with db.reading() as cur:
            rows = cur.execute(sql, (after,)).fetchall()
        return [(position, self.get(i)) for position, i in rows]

    def secret(self, subscription: WebhookSubscription) -> str:
        kek = self._kek()
        if subscription.secret_key_id != kek.key_id:
            raise InvalidRequest(f"webhook subscription {subscription.id} was sealed with key-encryption key "
                                 f"{subscription.secret_key_id}; the configured one is {kek.key_id}: create it again")
        wrapped = base64.b64decode(subscription.secret_sealed)
        return kek.unwrap(_SEAL_SUBJECT + str(subscription.id), wrapped).decode()

    # -- helpers ---------------------------------------------------------------------------------
    def _kek(self) -> Any:
        keys = getattr(self.ledger, "subject_keys", None)
        if keys is None:
            raise InvalidRequest("webhooks need the ledger's key-encryption key (CASELEDGER_KEK / CASELEDGER_KEK_FILE)")
        return keys.kek

    def _for_command(self, subscription_id: UUID | str, expected_version: int | None) -> WebhookSubscription:
        subscription = self.get(subscription_id)
        if expected_version is not None and subscription.version != expected_version:
            raise StaleVersion(expected_version, subscription.version)
        return subscription

    @staticmethod
    def _check_types(patterns: Any) -> None:
        if not isinstance(patterns, (list, tuple)):
            return  # the domain says what is wrong with it
        known = event_types_known()
        aggregates = {t.partition(".")[0] for t in known}
        for pattern in patterns:
            if not isinstance(pattern, str) or pattern == "*":
                continue
            aggregate, _, name = pattern.partition(".")
            if (name == "*" and aggregate not in aggregates) or (name != "*" and pattern not in known):
                raise InvalidValue(f"no event type {pattern!r}; e.g. {', '.join(sorted(known)[:3])}, "
                                   "'Ticket.*' or '*'", rule="webhook.event_types")


def subscription_view(subscription: WebhookSubscription) -> dict[str, Any]:
    """A subscription as the API and CLI show it (never its secret, sealed or not)."""
    return {"id": str(subscription.id), "url": subscription.url, "event_types": list(subscription.event_types),
            "filter": dict(subscription.filter), "role": subscription.role, "status": subscription.status,
            "version": subscription.version}

