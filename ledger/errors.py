"""Application-level errors (the domain's own errors live in ``domain.errors``)."""

from __future__ import annotations


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
