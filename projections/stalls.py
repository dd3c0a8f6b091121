"""Stalled read models: one that cannot apply an event stops there, alone, and says so durably.

A read model whose handler fails on an event, or whose rows for it a database refuses, must not
skip the event (its rows would silently be wrong) and must not stop the others (one bad event
would take every view, the API and ``projections run`` down with it, again on every restart).
So the runner applies everything before the event, records a *stall* — the read model, the
event's log position and topic, the reason — in ``projection_stalls`` next to the tracking
positions, and keeps projecting the other read models. A stalled read model is skipped by every
runner in every process until ``caseledger projections rebuild NAME`` (after the code is fixed)
deletes the stall together with the tables, and builds it again from position 0.

What is *not* a stall: an error that may go away by itself — the database unreachable, a lock or
serialization conflict, a table dropped by a rebuild in another process (:func:`is_transient`).
Those propagate as before (the batch is redone later); and a failure is only recorded once the
event, applied alone, fails again.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

from projections.failures import ProjectionFailed
from projections.storable import storable

STALL_TABLE = "projection_stalls"
CREATE_STALL_TABLE = (f"CREATE TABLE IF NOT EXISTS {STALL_TABLE} (name TEXT PRIMARY KEY, position BIGINT NOT NULL, "
                      "topic TEXT NOT NULL, reason TEXT NOT NULL, stalled_at TEXT NOT NULL)")
#: Longest reason kept (an exception message can quote a whole event).
MAX_REASON = 500
#: PostgreSQL error classes that a retry cannot fix although psycopg files them as operational:
#: 54 program limit exceeded (e.g. an index entry too big).
_DETERMINISTIC_SQLSTATE_CLASSES = ("54",)


@dataclass(frozen=True)
class Stall:
    name: str
    position: int  # the log position of the event it cannot apply
    topic: str
    reason: str
    stalled_at: str  # wall-clock time it was recorded, ISO 8601 UTC

    def describe(self) -> str:
        return f"stalled at log position {self.position} ({self.topic}): {self.reason}"


class ProjectionStalled(ProjectionFailed):
    """Raised by a strict catch-up (``ProjectionRunner.catch_up(strict=True)``) when one of its
    read models is stalled: whoever needs it current must not act on it."""

    def __init__(self, stall: Stall):
        self.stall = stall
        super().__init__(stall.name, stall.position, stall.topic, RuntimeError(stall.reason))
        self.args = (f"read model {stall.name!r} is {stall.describe()}; fix the cause, then run "
                     f"'caseledger projections rebuild {stall.name}'",)

    def __str__(self) -> str:
        return str(self.args[0])


def reason_of(error: BaseException) -> str:
    """One storable line: the underlying exception's type and message, at most :data:`MAX_REASON` characters."""
    cause = error.cause if isinstance(error, ProjectionFailed) else error
    text = " ".join(f"{type(cause).__name__}: {cause}".split())
    text = storable(text)
    return text if len(text) <= MAX_REASON else text[:MAX_REASON - 1] + "…"


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` (or what it wraps) may not happen again on a retry: see the module docstring."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (ConnectionError, TimeoutError, MemoryError, sqlite3.OperationalError)):
            return True
        if _psycopg_transient(current):
            return True
        current = current.cause if isinstance(current, ProjectionFailed) else current.__cause__
    return False


def _psycopg_transient(error: BaseException) -> bool:
    module = type(error).__module__
    if not module.startswith("psycopg"):
        return False
    import psycopg
    from psycopg import errors

    if isinstance(error, errors.UndefinedTable):  # dropped by a rebuild in another process meanwhile
        return True
    if isinstance(error, psycopg.InterfaceError):
        return True
    if isinstance(error, psycopg.OperationalError):
        state = getattr(error, "sqlstate", None) or ""
        return not state.startswith(_DETERMINISTIC_SQLSTATE_CLASSES)
    return False


def now_stamp() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def load(cur: Any, names: Iterable[str] | None = None) -> dict[str, Stall]:
    """The recorded stalls (of ``names`` only, if given), by read model."""
    rows = cur.execute(f"SELECT name, position, topic, reason, stalled_at FROM {STALL_TABLE}").fetchall()
    wanted = None if names is None else set(names)
    return {row[0]: Stall(row[0], int(row[1]), row[2], row[3], row[4]) for row in rows
            if wanted is None or row[0] in wanted}


def record(cur: Any, stall: Stall) -> None:
    # DO NOTHING: another runner may have found the same event first; the first record stands.
    cur.execute(f"INSERT INTO {STALL_TABLE} (name, position, topic, reason, stalled_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (name) DO NOTHING",
                (stall.name, stall.position, storable(stall.topic), stall.reason, stall.stalled_at))


def clear(cur: Any, names: Iterable[str]) -> None:
    for name in names:
        cur.execute(f"DELETE FROM {STALL_TABLE} WHERE name = ?", (name,))
