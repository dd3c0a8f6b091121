"""Application-level errors (the domain's own errors live in ``domain.errors``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from domain.errors import DomainError, InvalidValue


class LedgerError(Exception):
    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


class NotFound(LedgerError):
    """No aggregate of that kind with that id."""


class StaleVersion(LedgerError):
    """The caller's expected version (If-Match) is not the current one."""

    def __init__(self, expected: int, actual: int):
        self.expected, self.actual = expected, actual
        super().__init__(f"expected version {expected}, but the current version is {actual}")


class ConcurrentUpdate(LedgerError):
    """Another write to the same aggregate committed first; nothing of this one was written."""


class AlreadyExists(LedgerError):
    """An aggregate with this (deterministic) id exists already."""


class InvalidRequest(LedgerError):
    """A request the application cannot act on, for a reason outside any one aggregate."""


class BusinessTimeAhead(InvalidValue):
    """A command's business time is later than the wall clock plus the allowed skew (``time.future``).

    Raised by the ledger, the one place that reads the wall clock, for every event before it is
    stored; a domain error in form (it names its rule), so the API answers 422 like any refused
    value and the command line prints one line."""

    rule = "time.future"

    def __init__(self, occurred_at: datetime, clock: datetime, skew: timedelta):
        self.occurred_at, self.clock, self.skew = occurred_at, clock, skew
        super().__init__(f"business time {occurred_at.isoformat()} is later than the wall clock "
                         f"{clock.isoformat()} plus the allowed skew of {skew.total_seconds():g} s "
                         "(CASELEDGER_CLOCK_SKEW_SECONDS)")


class HistoryUnreadable(DomainError):
    """A stored event of this aggregate does not fit the code that folds it (written by another
    version, or below the application): the case cannot be reconstructed, so no command can act on
    it. The log keeps the event as stored; the read models stall on it alone (``projections``).
    A domain error in form (rule ``history.unreadable``): the API answers 409 naming it, never 500."""

    rule = "history.unreadable"

    def __init__(self, kind: str, aggregate_id: object, error: Exception):
        super().__init__(f"the stored history of {kind} {aggregate_id} cannot be read by this version of the "
                         f"code ({type(error).__name__}: {error}); its events are kept as stored — fix the code "
                         "that folds them, or ask an administrator", rule=self.rule)
