"""Delivering the webhook outbox: signed POSTs, retries with exponential backoff, a dead-letter list.

The outbox (``projections.webhook_outbox``) says *what* to deliver, from the log alone. This
module keeps *how it went*, in a table of its own (``webhook_delivery``, one row per delivery id;
not a read model: it is not derived from the log, and a rebuild of the outbox leaves it alone).

One pass (:meth:`WebhookDelivery.run_once`):

1. catch the outbox up with the log; enrol the outbox rows after the last enrolled position as
   ``pending`` (an insert that does nothing if the row exists, so two workers, or an outbox
   rebuilt under them, enrol each delivery once);
2. claim the pending deliveries that are due, each with a lease (an UPDATE that only one worker
   can win), and send each: the event as ``GET /events`` shows it, **personal data masked** as for
   a caller of the subscription's role who states no reason — a standing push cannot state a
   reason per read, so it is never unmasked — and only if that role may read the event's kind of
   record (``events.read``, or ``<kind>.read`` on all records); otherwise the delivery is
   ``withheld``. A removed subscription's deliveries are ``cancelled``.
3. a 2xx answer marks it ``delivered``; anything else (status, timeout, refused connection) counts
   a failure and schedules the next attempt after ``base_delay × 2^(failures−1)`` (at most
   ``max_delay``); after ``max_attempts`` failures it is ``dead``: the dead-letter list, which an
   administrator replays (:meth:`replay`: pending again, due now, failures kept for the record).

At least once: a worker that dies after the receiver answered but before it wrote ``delivered``
sends again when the lease runs out; the delivery id is the same, so the receiver drops it.
Deliveries are independent (one slow event does not hold up the others); each carries its log
``position`` so a receiver can order them.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain.permissions import AccessPolicy
from ledger.records import event_record
from projections.runtime import ProjectionRunner
from projections.store import Cursor, Table, ViewDatabase
from projections.webhook_outbox import OUTBOX_TABLE, WebhookOutbox
from services.disclosure import Disclosure
from services.webhooks import (
    DELIVERY_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    WebhookSubscriptions,
    kind_of_type,
    sign,
)

log = logging.getLogger("caseledger.webhooks")

DELIVERY_TABLE = Table(
    "webhook_delivery",
    columns=(("delivery_id", "TEXT"), ("subscription_id", "TEXT"), ("position", "BIGINT"), ("event_type", "TEXT"),
             ("aggregate_id", "TEXT"), ("version", "BIGINT"), ("status", "TEXT"), ("failures", "BIGINT"),
             ("next_attempt_ms", "BIGINT"), ("lease_until_ms", "BIGINT"), ("enrolled_ms", "BIGINT"),
             ("delivered_ms", "BIGINT"), ("last_status", "BIGINT"), ("last_error", "TEXT")),
    key=("delivery_id",), indexes=(("status", "next_attempt_ms"), ("position",), ("subscription_id", "position")))
STATUSES = ("pending", "delivered", "dead", "withheld", "cancelled")
_COLUMNS = ", ".join(DELIVERY_TABLE.column_names)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_delay: float = 10.0
    max_delay: float = 3600.0
    timeout: float = 10.0
    lease: float = 60.0

    def delay(self, failures: int) -> float:
        return min(self.base_delay * 2 ** max(failures - 1, 0), self.max_delay)


class WebhookDelivery:
    def __init__(self, ledger: Any, access: AccessPolicy, *, retry: RetryPolicy | None = None,
                 clock: Callable[[], float] = time.time, batch_size: int = 50):
        self.ledger = ledger
        self.access = access
        self.retry = retry or RetryPolicy()
        self.clock = clock
        self.batch_size = batch_size
        self.subscriptions = WebhookSubscriptions(ledger, access)
        self.runner = ProjectionRunner(ledger, [WebhookOutbox(ledger)])
        self.runner.ensure_tables()
        self.db: ViewDatabase = self.runner.db
        self.db.create_tables([DELIVERY_TABLE])

    def close(self) -> None:
        self.runner.close()

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- one pass ---------------------------------------------------------------------------------
    def run_once(self) -> dict[str, int]:
        """Catch up, enrol, deliver what is due; counts of outcomes."""
        self.runner.catch_up(strict=False)  # a stalled outbox still delivers what it queued
        self.enrol()
        counts = {status: 0 for status in ("delivered", "failed", "dead", "withheld", "cancelled")}
        for row in self._claim_due():
            counts[self._deliver(row)] += 1
        return counts

    def refresh(self) -> int:
        """Catch the outbox up with the log and enrol what it queued (for listings)."""
        self.runner.catch_up(strict=False)
        return self.enrol()

    def enrol(self) -> int:
        with self.db.transaction() as cur:
            enrolled = cur.execute(f"SELECT MAX(position) FROM {DELIVERY_TABLE.name}").fetchone()[0] or 0
            upto = cur.execute(f"SELECT MAX(position) FROM (SELECT position FROM {OUTBOX_TABLE.name} WHERE position > ? "
                               "ORDER BY position LIMIT 1000) AS next_rows", (enrolled,)).fetchone()[0]
            if upto is None:
                return 0
            now = self._now_ms()
            rows = cur.execute(f"SELECT delivery_id, subscription_id, position, event_type, aggregate_id, version "
                               f"FROM {OUTBOX_TABLE.name} WHERE position > ? AND position <= ?",
                               (enrolled, upto)).fetchall()
            cur.executemany(f"INSERT INTO {DELIVERY_TABLE.name} ({_COLUMNS}) VALUES "
                            f"({', '.join('?' * len(DELIVERY_TABLE.column_names))}) ON CONFLICT (delivery_id) DO NOTHING",
                            [(*row, "pending", 0, now, 0, now, None, None, None) for row in rows])
            return len(rows)

    def _claim_due(self) -> list[dict[str, Any]]:
        now = self._now_ms()
        with self.db.reading() as cur:
            due = cur.execute(f"SELECT {_COLUMNS} FROM {DELIVERY_TABLE.name} WHERE status = 'pending' AND "
                              "next_attempt_ms <= ? AND lease_until_ms <= ? ORDER BY next_attempt_ms, position LIMIT ?",
                              (now, now, self.batch_size)).fetchall()
        claimed = []
        lease = now + int((self.retry.lease + self.retry.timeout) * 1000)
        for values in due:
            row = dict(zip(DELIVERY_TABLE.column_names, values))
            with self.db.transaction() as cur:
                cur.execute(f"UPDATE {DELIVERY_TABLE.name} SET lease_until_ms = ? WHERE delivery_id = ? AND "
                            "status = 'pending' AND lease_until_ms <= ?", (lease, row["delivery_id"], now))
                won = cur.raw.rowcount == 1
            if won:
                claimed.append(row)
        return claimed

    def _deliver(self, row: dict[str, Any]) -> str:
        try:
            subscription = self.subscriptions.get(row["subscription_id"])
            if subscription.status != "active":
                return self._settle(row, "cancelled", error="the subscription was removed")
            kind = kind_of_type(row["event_type"])
            if not self._may_read(subscription.role, kind):
                return self._settle(row, "withheld", error=f"the {subscription.role} role may not read {kind} records")
            body = self.payload(row, subscription)
            secret = self.subscriptions.secret(subscription)
        except Exception as e:
            log.warning("webhook delivery %s could not be prepared", row["delivery_id"], exc_info=True)
            return self._failed(row, None, f"not prepared: {type(e).__name__}: {e}")
        status, error = self._post(subscription.url, body, secret, row)
        if status is not None and 200 <= status < 300:
            return self._settle(row, "delivered", last_status=status)
        return self._failed(row, status, error)

    def _may_read(self, role: str, kind: str | None) -> bool:
        if self.access.scope(role, "events.read") is not None:
            return True
        return kind is not None and self.access.scope(role, f"{kind}.read") == "all"

    def payload(self, row: dict[str, Any], subscription: Any) -> bytes:
        """The JSON body: the event as ``GET /events`` shows it to the role, personal data masked."""
        events = list(self.ledger.events.get(UUID(row["aggregate_id"]), gt=row["version"] - 1, lte=row["version"]))
        if not events:
            raise LookupError(f"no event {row['aggregate_id']} v{row['version']} in the store")
        record = event_record(events[0], row["position"])
        record["personal"] = Disclosure().part(record["personal"])  # no reason can be stated: always masked
        envelope = {"delivery_id": row["delivery_id"], "subscription_id": row["subscription_id"],
                    "event_type": row["event_type"], "event": record}
        return json.dumps(envelope, ensure_ascii=False, sort_keys=True, default=str).encode()

    def _post(self, url: str, body: bytes, secret: str, row: dict[str, Any]) -> tuple[int | None, str | None]:
        timestamp = int(self.clock())
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "caseledger-webhooks",
            SIGNATURE_HEADER: sign(secret, timestamp, body), DELIVERY_HEADER: row["delivery_id"],
            "Idempotency-Key": row["delivery_id"], EVENT_TYPE_HEADER: row["event_type"]})
        try:
            with urllib.request.urlopen(request, timeout=self.retry.timeout) as response:
                return response.status, None
        except urllib.error.HTTPError as e:
            return e.code, f"HTTP {e.code}"
        except (OSError, ValueError) as e:  # refused, reset, timed out, bad URL
            return None, f"{type(e).__name__}: {e}"

    def _failed(self, row: dict[str, Any], status: int | None, error: str | None) -> str:
        failures = int(row["failures"]) + 1
        if failures >= self.retry.max_attempts:
            log.warning("webhook delivery %s is dead after %d failures: %s", row["delivery_id"], failures, error)
            self._settle(row, "dead", failures=failures, last_status=status, error=error)
            return "dead"
        next_ms = self._now_ms() + int(self.retry.delay(failures) * 1000)
        self._update(row, status="pending", failures=failures, next_attempt_ms=next_ms, last_status=status,
                     last_error=error)
        return "failed"

    def _settle(self, row: dict[str, Any], status: str, *, failures: int | None = None, last_status: int | None = None,
                error: str | None = None) -> str:
        self._update(row, status=status, failures=row["failures"] if failures is None else failures,
                     delivered_ms=self._now_ms() if status == "delivered" else None, last_status=last_status,
                     last_error=error)
        return status

    def _update(self, row: dict[str, Any], **values: Any) -> None:
        values["lease_until_ms"] = 0
        with self.db.transaction() as cur:
            cur.execute(f"UPDATE {DELIVERY_TABLE.name} SET {', '.join(f'{k} = ?' for k in values)} WHERE delivery_id = ?",
                        (*values.values(), row["delivery_id"]))

    # -- the dead-letter list and listings -------------------------------------------------------
    def replay(self, delivery_id: str) -> tuple[dict[str, Any] | None, bool]:
        """A dead (or withheld) delivery becomes pending again, due now: (the delivery or None if
        there is none, whether it was replayed — not if it was neither dead nor withheld)."""
        with self.db.transaction() as cur:
            cur.execute(f"UPDATE {DELIVERY_TABLE.name} SET status = 'pending', next_attempt_ms = ?, lease_until_ms = 0 "
                        "WHERE delivery_id = ? AND status IN ('dead', 'withheld')", (self._now_ms(), delivery_id))
            replayed = cur.raw.rowcount == 1
        return self.delivery(delivery_id), replayed

    def delivery(self, delivery_id: str) -> dict[str, Any] | None:
        with self.db.reading() as cur:
            found = cur.execute(f"SELECT {_COLUMNS} FROM {DELIVERY_TABLE.name} WHERE delivery_id = ?",
                                (delivery_id,)).fetchone()
        return None if found is None else dict(zip(DELIVERY_TABLE.column_names, found))

    def deliveries(self, *, status: str | None = None, subscription_id: str | None = None,
                   after: tuple[int, str] | int | None = None, until: int | None = None,
                   limit: int | None = 100) -> list[dict[str, Any]]:
        """Deliveries in log order (position, then delivery id), after the keyset ``after`` (a
        position alone: after all of its deliveries), at
        positions up to ``until``; at most ``limit`` (None: all)."""
        where, params = ["1 = 1"], []
        if status:
            where.append("status = ?")
            params.append(status)
        if subscription_id:
            where.append("subscription_id = ?")
            params.append(subscription_id)
        if isinstance(after, int):
            where.append("position > ?")
            params.append(after)
        elif after is not None:
            where.append("(position > ? OR (position = ? AND delivery_id > ?))")
            params += [after[0], after[0], after[1]]
        if until is not None:
            where.append("position <= ?")
            params.append(until)
        with self.db.reading() as cur:
            rows = cur.execute(f"SELECT {_COLUMNS} FROM {DELIVERY_TABLE.name} WHERE {' AND '.join(where)} "
                               "ORDER BY position, delivery_id" + ("" if limit is None else f" LIMIT {int(limit)}"),
                               params).fetchall()
        return [dict(zip(DELIVERY_TABLE.column_names, r)) for r in rows]


def delivery_stats(cur: Cursor, now_ms: int) -> dict[str, Any]:
    """For /metrics: deliveries by status, failed attempts, and the age of the oldest pending one."""
    by_status = dict(cur.execute(f"SELECT status, COUNT(*) FROM {DELIVERY_TABLE.name} GROUP BY status").fetchall())
    failures = cur.execute(f"SELECT COALESCE(SUM(failures), 0) FROM {DELIVERY_TABLE.name}").fetchone()[0]
    oldest = cur.execute(f"SELECT MIN(enrolled_ms) FROM {DELIVERY_TABLE.name} WHERE status = 'pending'").fetchone()[0]
    return {"by_status": {s: int(by_status.get(s, 0)) for s in STATUSES}, "failures": int(failures),
            "oldest_pending_seconds": 0.0 if oldest is None else max(now_ms - int(oldest), 0) / 1000}
