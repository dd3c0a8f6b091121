"""Storage that refuses every write for a while: a read-only database or a full disk.

Neither is a bug of ours nor a bad request; a client should try again later, and an operator must
act (make the database writable again, free space). Entry points answer these with "unavailable"
(HTTP 503 with ``Retry-After``) instead of a generic internal error, naming the cause. The
drivers' errors arrive wrapped (eventsourcing re-raises them as its own ``PersistenceError``
``from`` the original), so the whole chain of causes is looked at.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Iterator

import psycopg.errors


@dataclass(frozen=True)
class Unavailable:
    cause: str  # stable, machine readable
    detail: str
    retry_after: int  # seconds: a guess at how long an operator needs


READ_ONLY = Unavailable("read-only", "the database is read-only: nothing can be saved until it is writable again", 60)
DISK_FULL = Unavailable("disk-full", "the database's disk is full: nothing can be saved until space is freed", 300)


def storage_unavailable(error: BaseException) -> Unavailable | None:
    """READ_ONLY or DISK_FULL when ``error`` (or anything that caused it) says so, else None."""
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
