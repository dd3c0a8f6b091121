"""Idempotency keys: a retried POST gets the first attempt's answer instead of a second write — also
when the first attempt's process died half way.

A table beside the events (``idempotency_keys``, created with the recorder's tables on both
backends) holds one row per (caller, key): the request's fingerprint; who holds the key (``claim``,
a random id) and until when (``lease_until``); what the holder has committed (``written``); and,
once it finished, its status, headers and body.

- **Claim by unique constraint.** The first request with a key inserts the row (``ON CONFLICT DO
  NOTHING``, primary key ``(caller, key)``) and then runs; everyone else finds the row. The
  database decides the race, so this holds across threads, processes and hosts.
- **Committed with the events.** While a request runs, its :class:`Claim` is the context variable
  :data:`CLAIM`. ``CaseLedger`` passes it to the recorder with every save, and the recorder marks
  the row (``written``, and a renewed lease) *in the transaction that writes the events and their
  Merkle leaves*, if the claim is still this request's. So the row says "written" exactly when the
  events are stored: no crash can fall between the two. A request that has lost its claim (its
  lease ran out and a retry took the key over) cannot write at all: the mark finds no row and the
  whole transaction is rolled back (:class:`ClaimLost`; the API answers 409).
- **Same key, same request** (fingerprint: method, path, query, content type and body):
  - a stored response → ``replay`` it;
  - the holder's lease is still running → *wait* for it (up to ``wait_seconds``, polling), then
    its response; still running after that → ``pending`` (the API answers 409 with Retry-After);
  - the lease has run out and nothing was written → the holder died before its commit: the key is
    taken over (a new claim) and the request runs (``run``), once;
  - the lease has run out and something was written → the holder died after its commit, before
    its response was kept: the key is taken over and the answer is rebuilt from what was written
    (``reconstruct``: the API renders the resource at the version written) — never run twice.
- **Same key, different request**: ``mismatch`` (the API answers 422).
- A response with a 5xx status is not kept. If nothing was written the key is released, so the
  client may retry; if something was, the lease is ended instead, so a retry rebuilds the answer.
- Keys are kept for ``ttl`` (default 24 hours) and then forgotten.

Times are the hosts' own clocks (lease and TTL are far longer than any sane clock difference).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Sequence

from ledger.errors import LedgerError
from ledger.sqlaccess import SqlAccess

TABLE = "idempotency_keys"
TTL = timedelta(hours=24)
#: How long a claim holds its key without a sign of life. Longer than any request should take
#: (gunicorn's worker timeout is 30 s), and every commit of the request renews it, so a bulk import
#: writing batch after batch keeps its key; a request silent for longer may be taken over by a
#: retry, and then can no longer commit (see :class:`ClaimLost`).
LEASE = timedelta(seconds=60)
#: Aggregates listed by id in ``written``; only a bulk import writes more, and its answer needs the
#: counts alone (a full list would be rewritten with every batch).
LISTED = 100


class ClaimLost(LedgerError):
    """The request's claim on its key ran out and a retry took the key over: nothing of this save
    was written (the retry runs the command instead)."""


@dataclass
class Written:
    """What a request holding a claim has committed: per aggregate (up to :data:`LISTED`) the first
    and last version it wrote, how many events, and how many aggregates it created (version 1)."""

    events: int = 0
    created: int = 0
    aggregates: dict[str, list[int]] = field(default_factory=dict)

    def last(self, aggregate_id: Any) -> int | None:
        versions = self.aggregates.get(str(aggregate_id))
        return versions[1] if versions else None

    def created_ids(self) -> list[str]:
        return [aggregate_id for aggregate_id, (first, _) in self.aggregates.items() if first == 1]

    def plus(self, stored_events: Iterable[Any]) -> Written:
        aggregates = {k: list(v) for k, v in self.aggregates.items()}
        events, created = self.events, self.created
        for event in stored_events:
            oid, version = str(event.originator_id), event.originator_version
            events, created = events + 1, created + (version == 1)
            if oid in aggregates:
                first, last = aggregates[oid]
                aggregates[oid] = [min(first, version), max(last, version)]
            elif len(aggregates) < LISTED:
                aggregates[oid] = [version, version]
        return Written(events, created, aggregates)

    def dumps(self) -> str:
        return json.dumps({"events": self.events, "created": self.created, "aggregates": self.aggregates})

    @classmethod
    def loads(cls, text: str | None) -> Written | None:
        if text is None:
            return None
        data = json.loads(text)
        return cls(data["events"], data["created"], data["aggregates"])


@dataclass
class Claim:
    """A request's hold on its key (``token`` is the random claim id in the row)."""

    caller: str
    key: str
    token: str
    lease: timedelta = LEASE
    written: Written | None = None  # None: nothing committed yet

    def mark(self, stored_events: Sequence[Any]) -> tuple[Written, tuple]:
        """For the recorder: what is written after these events, and the parameters of
        :func:`mark_statement`. Keep the first in :attr:`written` only once the transaction commits."""
        written = (self.written or Written()).plus(stored_events)
        lease_until = _stamp(datetime.now(timezone.utc) + self.lease)
        return written, (written.dumps(), lease_until, self.caller, self.key, self.token)


#: The claim of the request this thread is serving, if it carries a key (set by the API).
CLAIM: ContextVar[Claim | None] = ContextVar("caseledger_idempotency_claim", default=None)


def table_statements(table: str, *, pg: bool) -> list[str]:
    """CREATE statements of the table, named ``table`` (qualified with the schema on PostgreSQL)."""
    body = "BYTEA" if pg else "BLOB"
    index = f"ix_{TABLE}_created_at"
    return [f"CREATE TABLE IF NOT EXISTS {table} (caller TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT "
            f"NULL, claim TEXT NOT NULL, created_at TEXT NOT NULL, lease_until TEXT, written TEXT, status INTEGER, "
            f"headers TEXT, body {body}, PRIMARY KEY (caller, key))",
            f"CREATE INDEX IF NOT EXISTS {index} ON {table} (created_at)"]


def mark_statement(table: str, *, pg: bool) -> str:
    """Mark the row of a claim as written (renewing its lease), in the transaction of the events;
    returns a row only if the claim is still held."""
    p = "%s" if pg else "?"
    return (f"UPDATE {table} SET written = {p}, lease_until = {p} WHERE caller = {p} AND key = {p} AND claim = {p} "
            "RETURNING 1")


@dataclass(frozen=True)
class Outcome:
    """What to do with a request carrying a key: ``run`` it or ``reconstruct`` its answer (holding
    ``claim``), ``replay`` the stored response, or refuse it (``mismatch``, ``pending``)."""

    kind: str
    claim: Claim | None = None
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    holder: str = ""  # kind "expired": the claim id whose lease ran out


def _stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class IdempotencyStore:
    def __init__(self, ledger: Any, *, ttl: timedelta = TTL, wait_seconds: float = 10.0, lease: timedelta = LEASE):
        if not getattr(ledger.recorder, "marks_idempotency_keys", False):
            # Another recorder would ignore the claim: keys would look unwritten after a write.
            raise TypeError(f"{type(ledger.recorder).__name__} does not mark idempotency keys with the events")
        self.sql = SqlAccess(ledger.recorder, {"keys": TABLE})
        self.ttl, self.wait_seconds, self.lease = ttl, wait_seconds, lease
        with self.sql.schema_transaction() as cur:
            for statement in table_statements("{keys}", pg=self.sql.pg):
                cur.execute(statement)
            self._add_columns(cur)

    def _add_columns(self, cur: Any) -> None:
        """A table made before leases (by an older version) gets their columns. Its unfinished rows
        have no lease: they are never taken over, as before (whether they wrote is unknown)."""
        if self.sql.pg:
            schema = self.sql.recorder.datastore.schema or "public"
            have = {r[0] for r in cur.rows("SELECT column_name FROM information_schema.columns WHERE table_schema = ? "
                                           "AND table_name = ?", (schema, TABLE))}
        else:
            have = {r[1] for r in cur.rows(f"PRAGMA table_info({TABLE})")}
        for column in ("lease_until", "written"):
            if column not in have:
                cur.execute(f"ALTER TABLE {{keys}} ADD COLUMN {column} TEXT")

    def begin(self, caller: str, key: str, fingerprint: str) -> Outcome:
        """Claim the key (or take it over), or wait for whoever holds it and return their response."""
        token = secrets.token_hex(16)
        deadline = time.monotonic() + self.wait_seconds
        pause, outcome = 0.01, Outcome("gone")
        while True:
            if outcome.kind == "gone":  # first try, or the holder failed and released it: claim it
                self._claim(caller, key, fingerprint, token)
            elif outcome.kind == "expired":  # the holder died (or stalled): take its key over
                self._take_over(caller, key, outcome.holder, token)
            outcome = self._look(caller, key, fingerprint, token)
            if outcome.kind not in ("pending", "gone", "expired"):
                return outcome
            if time.monotonic() >= deadline:
                return Outcome("pending")
            if outcome.kind == "pending":
                time.sleep(pause)
                pause = min(pause * 2, 0.2)

    def _claim(self, caller: str, key: str, fingerprint: str, token: str) -> None:
        now = datetime.now(timezone.utc)
        with self.sql.transaction() as cur:
            cur.execute("DELETE FROM {keys} WHERE created_at < ?", (_stamp(now - self.ttl),))
            cur.execute("INSERT INTO {keys} (caller, key, fingerprint, claim, created_at, lease_until) "
                        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (caller, key) DO NOTHING",
                        (caller, key, fingerprint, token, _stamp(now), _stamp(now + self.lease)))

    def _take_over(self, caller: str, key: str, holder: str, token: str) -> None:
        # Only if it is still the same holder's, unfinished and expired: on PostgreSQL this waits
        # for a transaction marking the row (a commit renews the lease) and then finds it alive.
        now = datetime.now(timezone.utc)
        self.sql.execute("UPDATE {keys} SET claim = ?, lease_until = ? WHERE caller = ? AND key = ? AND claim = ? "
                         "AND status IS NULL AND lease_until < ?",
                         (token, _stamp(now + self.lease), caller, key, holder, _stamp(now)))

    def _look(self, caller: str, key: str, fingerprint: str, token: str) -> Outcome:
        rows = self.sql.rows("SELECT fingerprint, claim, lease_until, written, status, headers, body FROM {keys} "
                             "WHERE caller = ? AND key = ?", (caller, key))
        if not rows:
            return Outcome("gone")
        stored_fingerprint, holder, lease_until, written, status, headers, body = rows[0]
        if stored_fingerprint != fingerprint:
            return Outcome("mismatch")
        if holder == token:
            claim = Claim(caller, key, token, self.lease, Written.loads(written))
            return Outcome("run" if claim.written is None else "reconstruct", claim=claim)
        if status is not None:
            return Outcome("replay", status=int(status), headers=json.loads(headers or "{}"), body=bytes(body or b""))
        if lease_until is None or lease_until > _stamp(datetime.now(timezone.utc)):
            return Outcome("pending")
        return Outcome("expired", holder=holder)

    def complete(self, claim: Claim, status: int, headers: dict[str, str], body: bytes) -> None:
        """Keep the response of the request holding ``claim`` (after a 5xx: see the module's doc)."""
        if status >= 500 and claim.written is None:
            self.release(claim)
        elif status >= 500:
            self.sql.execute("UPDATE {keys} SET lease_until = ? WHERE caller = ? AND key = ? AND claim = ?",
                             (_stamp(datetime.now(timezone.utc)), claim.caller, claim.key, claim.token))
        else:
            self.sql.execute("UPDATE {keys} SET status = ?, headers = ?, body = ? "
                             "WHERE caller = ? AND key = ? AND claim = ?",
                             (status, json.dumps(headers), body, claim.caller, claim.key, claim.token))

    def release(self, claim: Claim) -> None:
        self.sql.execute("DELETE FROM {keys} WHERE caller = ? AND key = ? AND claim = ?",
                         (claim.caller, claim.key, claim.token))


def fingerprint(*parts: str | bytes) -> str:
    """SHA-256 over the length-prefixed parts of a request (so no two requests collide by concatenation)."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big") + data)
    return base64.b64encode(digest.digest()).decode("ascii")
