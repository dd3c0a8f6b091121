"""The ledger's PostgreSQL connections through an outage: requests fail fast, the pool heals by itself.

Without this, eventsourcing's datastore waits ``POSTGRES_CONNECT_TIMEOUT`` for a pooled connection
and its recorders retry a failed statement ten times, 0.2 s apart: a request learnt that the
database was down only after tens of seconds (28.7 s measured), holding a worker thread all along.
And a server restart leaves every idle pooled connection dead, found out one checkout at a time.

:func:`harden` (the composition root calls it for every PostgreSQL ledger) turns the datastore into
a :class:`ResilientDatastore` — the same object, so every recorder and ``SqlAccess`` of the ledger
gets it — which changes three things:

- **A bounded wait where one is asked for.** Inside :func:`bounded_wait` (the API wraps every
  request in one) the first attempt that fails to reach the database starts a clock: later attempts
  (eventsourcing's retries, the request's next statements) get what is left of the budget for their
  checkout, and once it is spent they fail at once with :class:`~ledger.unavailable.DatabaseUnreachable`,
  which no retry loop catches. When the database is already known to be down, a request gets only
  :data:`KNOWN_DOWN_WAIT` from its arrival: in an outage requests are answered quickly, instead of
  each holding a worker thread for the whole budget while new ones queue behind them. Outside such a block — projection runner, scheduler, command line —
  the library's retries stay: a background process may as well wait.
- **A checked-out connection idle for more than :data:`PING_AFTER_IDLE_SECONDS` is pinged** (one
  empty statement). A dead one goes back to the pool, which replaces it, and the pool is drained:
  after a restart its other idle connections are dead as well, and the next checkout waits for a
  fresh one instead of trying them in turn (psycopg_pool's own check sleeps 1 s, 2 s … between dead
  connections). A connection used within that time is not pinged: the ping was a round trip on
  every checkout, ≈ 20 % of an API command (issue 22). If it died in that moment anyway, its first
  statement fails as a connection failure: the connection is dropped, the pool drained, and the
  failure counts against the budget like any other — eventsourcing's recorders retry it on a fresh
  connection.
- **Reconnection is retried often.** psycopg_pool backs a failed reconnection off exponentially for
  up to 5 minutes, so after a 30 s outage it could wait another 30 s before trying again; it gives
  up after :data:`RECONNECT_SECONDS` instead, and the next request that waits starts a new attempt
  at once.

Only connection failures (``ledger.unavailable.connection_failure``) count against the budget: a
lock timeout or a full disk keeps the library's behaviour and its own answer.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Iterator

import psycopg
from eventsourcing import persistence
from eventsourcing.postgres import PostgresDatastore
from psycopg.types.composite import register_composite

from ledger.unavailable import DatabaseUnreachable, connection_failure

#: A connection given back to the pool less than this many seconds ago is handed out without a
#: ping: under traffic a connection is rarely idle longer, so the ping is paid only after a lull —
#: exactly when a restart or a server-side idle timeout may have closed it unseen.
PING_AFTER_IDLE_SECONDS = 1.0
#: The attribute, on a psycopg connection, holding when this module last gave it back to the pool
#: (psycopg_pool keeps its own ``_created_at``/``_expire_at`` there the same way).
_RETURNED_AT = "_caseledger_returned_at"
#: How long a failing reconnection is retried (psycopg_pool tries again after 1 s, then at the end)
#: before the pool gives up on it and lets the next waiting request start a new attempt at once.
RECONNECT_SECONDS = 2.0
#: The share of a request's budget spent waiting for the database: the rest of the request
#: (authentication, the problem document) needs a moment too, and the whole stays within it.
WAIT_SHARE = 0.9
#: How long a request waits when the database is already known to be down (another request found
#: it gone and none has reached it since): long enough to catch the pool's next reconnection
#: attempt now and then, short enough that an outage does not fill every worker thread with
#: waiting requests — queued behind them, new ones would be answered late.
KNOWN_DOWN_WAIT = 0.5
#: psycopg's errors and eventsourcing's, as eventsourcing's datastore translates them (most specific first).
_TRANSLATED = ((psycopg.InterfaceError, persistence.InterfaceError), (psycopg.OperationalError, persistence.OperationalError),
               (psycopg.DataError, persistence.DataError), (psycopg.IntegrityError, persistence.IntegrityError),
               (psycopg.InternalError, persistence.InternalError), (psycopg.ProgrammingError, persistence.ProgrammingError),
               (psycopg.NotSupportedError, persistence.NotSupportedError),
               (psycopg.DatabaseError, persistence.DatabaseError), (psycopg.Error, persistence.PersistenceError))


@dataclass
class _Budget:
    seconds: float
    opened: float = field(default_factory=time.monotonic)  # when the request began
    spent_at: float | None = None  # armed by a failure

    def checkout_timeout(self, default: float, known_down: bool) -> float:
        if known_down and self.spent_at is None:
            # Another request found the database gone and none has reached it since: this one waits
            # KNOWN_DOWN_WAIT, counted from its arrival, whatever it waited on before this (a lock
            # another request held while it waited for the database, say).
            self.spent_at = self.opened + min(self.seconds, KNOWN_DOWN_WAIT)
        if self.spent_at is None:
            return min(default, self.seconds)
        left = self.spent_at - time.monotonic()
        if left <= 0:
            raise DatabaseUnreachable(f"no answer from the database within {self.seconds:.1f} s")
        return min(default, left)

    def failed(self, started: float, error: BaseException) -> None:
        if self.spent_at is None:
            self.spent_at = started + self.seconds
        if time.monotonic() >= self.spent_at:
            raise DatabaseUnreachable(f"no answer from the database within {self.seconds:.1f} s") from error


_BUDGET: ContextVar[_Budget | None] = ContextVar("caseledger_database_wait", default=None)


@contextmanager
def bounded_wait(seconds: float) -> Iterator[None]:
    """Within the block, an unreachable database is given up on after ``seconds`` (all attempts
    together); see the module's docstring."""
    token = _BUDGET.set(_Budget(seconds * WAIT_SHARE))
    try:
        yield
    finally:
        _BUDGET.reset(token)


class ResilientDatastore(PostgresDatastore):
    """eventsourcing's datastore with the checkout above; everything else is the library's."""

    #: Set by a connection failure, cleared by the next connection that works: the database is down.
    known_down: bool = False

    @contextmanager
    def get_connection(self) -> Iterator[Any]:
        budget = _BUDGET.get()
        started = time.monotonic()
        try:
            self.pool.open(self.pool_open_timeout is not None, self.pool_open_timeout or 30.0)
            timeout = self.pool.timeout
            if budget is not None:
                timeout = budget.checkout_timeout(timeout, self.known_down)
            conn = self._checkout(timeout)
            self.known_down = False
            try:
                for info in self.psycopg_type_adapters.values():  # as the library's: the composite types
                    if not conn.adapters.types.get(info.oid):
                        register_composite(info, conn)
                yield conn
            finally:
                lost = conn.broken
                setattr(conn, _RETURNED_AT, time.monotonic())
                self.pool.putconn(conn)
                if lost:  # the server went away under it: so did every idle connection's
                    self.pool.drain()
        except psycopg.Error as e:
            translated = _translate(e)
            translated.__cause__ = e
            if connection_failure(e):
                self.known_down = True
                if budget is not None:
                    budget.failed(started, translated)
            raise translated from e

    def _checkout(self, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            # A timeout of 0 or less makes the pool raise PoolTimeout at once.
            conn = self.pool.getconn(deadline - time.monotonic())
            returned_at = getattr(conn, _RETURNED_AT, None)  # None: new, or never through here
            if returned_at is not None and time.monotonic() - returned_at < PING_AFTER_IDLE_SECONDS:
                return conn
            try:
                conn.execute("")  # the ping: an empty statement, one round trip
            except psycopg.Error:
                self.pool.putconn(conn)  # broken: the pool replaces it
                self.pool.drain()
                continue
            return conn


def _translate(error: psycopg.Error) -> persistence.PersistenceError:
    for theirs, ours in _TRANSLATED:
        if isinstance(error, theirs):
            return ours(str(error))
    return persistence.PersistenceError(str(error))  # pragma: no cover - psycopg.Error is the last entry


def harden(datastore: Any, timeout: float) -> None:
    """Make ``datastore`` (eventsourcing's, already in use) a :class:`ResilientDatastore` whose pool
    waits at most ``timeout`` seconds for a connection and gives up reconnecting after
    :data:`RECONNECT_SECONDS`. In place: every recorder of the ledger holds this object."""
    if type(datastore) is not PostgresDatastore:
        return  # SQLite's; or already ours; or someone's subclass, whose class is not ours to change
    # The library's factory builds its datastore inline, with no hook for a subclass; ours adds
    # methods and a flag with a class default, no state to set up, so changing the class of the
    # built object is safe.
    datastore.__class__ = ResilientDatastore
    pool = datastore.pool
    pool.timeout = timeout
    pool.reconnect_timeout = RECONNECT_SECONDS
    if isinstance(pool.kwargs, dict):
        # libpq's own connect timeout (whole seconds, at least 2): a connection attempt to a host
        # that does not answer at all must not block one of the pool's workers for minutes.
        pool.kwargs.setdefault("connect_timeout", max(2, math.ceil(timeout)))
