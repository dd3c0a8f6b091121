"""Option types shared by the commands: a bad value is click's one-line usage error, never a traceback."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from ledger.errors import LedgerError
from services.replay import Point

EXAMPLE = "2025-09-01T09:00:00+08:00"


def parse_moment(text: str) -> datetime:
    """An ISO 8601 time with a time zone (``Z`` for UTC); ValueError naming the expected form."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time, e.g. {EXAMPLE}") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        # A time without a zone would be read in some zone or other: business time must be exact.
        raise ValueError(f"{text!r} has no time zone; add one, e.g. {EXAMPLE}")
    return moment


class Moment(click.ParamType):
    """``--at`` / ``--as-of``: an ISO 8601 time with a time zone."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return parse_moment(str(value))
        except ValueError as e:
            self.fail(str(e), param, ctx)


class ReplayPoint(click.ParamType):
    """A log position (a whole number) or an ISO 8601 time with a time zone."""

    name = "POSITION|TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Point:
        if isinstance(value, Point):
            return value
        try:
            return Point.parse(str(value))
        except LedgerError as e:
            self.fail(e.message, param, ctx)


MOMENT = Moment()
REPLAY_POINT = ReplayPoint()
