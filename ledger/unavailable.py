"""Storage that refuses work for a while: a read-only database, a full disk, a database that cannot be reached.

None is a bug of ours nor a bad request; a client should try again later, and an operator must
act (make the database writable again, free space) or wait (a server restarting, a failover).
Entry points answer these with "unavailable" (HTTP 503 with ``Retry-After``) instead of a generic
internal error, naming the cause. The drivers' errors arrive wrapped (eventsourcing re-raises them
as its own ``PersistenceError`` ``from`` the original), so the whole chain of causes is looked at.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Iterator

import psycopg
import psycopg.errors
from psycopg_pool import PoolTimeout


@dataclass(frozen=True)
class Unavailable:
    cause: str  # stable, machine readable
    detail: str
    retry_after: int  # seconds: a guess at how long an operator needs


READ_ONLY = Unavailable("read-only", "the database is read-only: nothing can be saved until it is writable again", 60)
DISK_FULL = Unavailable("disk-full", "the database's disk is full: nothing can be saved until space is freed", 300)
#: Short: a restart or a failover is over in seconds, and the pool reconnects by itself.
UNREACHABLE = Unavailable("database-unreachable", "the database cannot be reached now (restarting, failing over "
                          "or down); retry later, a write with the same Idempotency-Key: if it was saved before the "
                          "database went away, it is not saved twice", 5)
#: SQLSTATEs of a server that is going away or not yet there: class 08 (connection exception) and
#: admin_shutdown, crash_shutdown, cannot_connect_now ("the database system is starting up").
_GOING_AWAY = ("57P01", "57P02", "57P03")


class DatabaseUnreachable(Exception):
    """The database did not answer within the time a request may wait (``ledger.outage``).

    Deliberately not one of eventsourcing's ``OperationalError``/``InterfaceError``: its recorders
    retry those ten times, and this says that the waiting is over."""


def connection_failure(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) is the database being out of reach — no connection
    could be had, or the one in use was lost — rather than a statement it refused."""
    for cause in _chain(error):
        if isinstance(cause, (DatabaseUnreachable, PoolTimeout, psycopg.InterfaceError)):
            return True
        if isinstance(cause, psycopg.OperationalError):
            # No SQLSTATE: libpq's own failure (refused, reset, closed), never a server's refusal.
            state = cause.sqlstate
            return state is None or state.startswith("08") or state in _GOING_AWAY
    return False


def storage_unavailable(error: BaseException) -> Unavailable | None:
    """READ_ONLY, DISK_FULL or UNREACHABLE when ``error`` (or anything that caused it) says so, else None."""
    if connection_failure(error):
        return UNREACHABLE
    for cause in _chain(error):
        if isinstance(cause, psycopg.errors.ReadOnlySqlTransaction):
            return READ_ONLY
        if isinstance(cause, psycopg.errors.DiskFull):
            return DISK_FULL
        if isinstance(cause, sqlite3.Error):
            # Extended result codes keep the primary code in the low byte (SQLITE_READONLY_DBMOVED…).
            primary = (getattr(cause, "sqlite_errorcode", None) or 0) & 0xFF
            message = str(cause)
            if primary == sqlite3.SQLITE_READONLY or "readonly database" in message:
                return READ_ONLY
            if primary == sqlite3.SQLITE_FULL or "database or disk is full" in message:
                return DISK_FULL
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        # werkzeug's InternalServerError carries the unhandled error as ``original_exception``.
        pending += [current.__cause__, current.__context__, getattr(current, "original_exception", None)]
