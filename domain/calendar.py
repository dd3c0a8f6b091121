"""Working-day arithmetic over a business calendar.

"Working days" in the source documents (e.g. "2 working days", 002 §3.1) follow the Chinese
public holidays *and* the make-up working days (调休) on weekends. The calendar itself is an
adapter (``ledger.calendar`` wraps the ``holidays`` package); the domain only needs to ask
whether a day is a working day.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from domain.errors import InvalidValue

#: A calendar is searched this many days ahead at most: no real calendar has a longer break.
_MAX_SEARCH_DAYS = 60


class BusinessCalendar(Protocol):
    def is_working_day(self, day: date) -> bool: ...


class WeekdayCalendar:
    """Monday to Friday, no holidays: for tests and for policies without a regional calendar."""

    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5


def add_working_days(start: datetime, days: int, calendar: BusinessCalendar, tz: ZoneInfo) -> datetime:
    """The deadline ``days`` working days after ``start``.

    Rule (documented in the README): the deadline is the end (24:00 local time) of the
    ``days``-th working day *after* the local day on which the clock started. A clock started
    on a holiday therefore gets full working days, never a fraction of one.
    """
    if days < 0:
        raise InvalidValue("a number of working days cannot be negative", rule="calendar.negative")
    day = start.astimezone(tz).date()
    counted = 0
    searched = 0
    while counted < days:
        day += timedelta(days=1)
        searched += 1
        if calendar.is_working_day(day):
            counted += 1
            searched = 0
        elif searched > _MAX_SEARCH_DAYS:
            raise InvalidValue("the business calendar has no working day in sight", rule="calendar.empty")
    end_of_day = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return end_of_day


def add_duration(start: datetime, amount: float, unit: str, calendar: BusinessCalendar, tz: ZoneInfo) -> datetime:
    """``start`` plus a policy limit, in the limit's own unit."""
    if unit == "minutes" or unit == "hours":
        return _later(start, id(start.tzinfo), start.fold, amount, unit)
    if unit == "working_days":
        if amount != int(amount):
            raise InvalidValue("working-day limits must be whole days", rule="calendar.fraction")
        return add_working_days(start, int(amount), calendar, tz)
    raise InvalidValue(f"unknown time unit {unit!r}", rule="calendar.unit")


@functools.lru_cache(maxsize=1 << 16)
def _later(start: datetime, tzinfo_id: int, fold: int, amount: float, unit: str) -> datetime:
    # A clock's deadline is asked again on each event of its case: one object per deadline is cheaper
    # to make again, and to compare and format later. Equal datetimes in other time zones or folds are
    # equal keys on their own, so the key also holds the very tzinfo (kept alive by ``start``).
    return start + (timedelta(minutes=amount) if unit == "minutes" else timedelta(hours=amount))
