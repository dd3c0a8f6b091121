"""Working-day arithmetic over a business calendar.

"Working days" in the source documents (e.g. "2 working days", 002 §3.1) follow the Chinese
public holidays *and* the make-up working days (调休) on weekends. The calendar itself is an
adapter (``ledger.calendar``: the State Council's yearly notices in ``domain/policies/calendar``,
over the ``holidays`` package); the domain only needs to ask whether a day is a working day.

:class:`YearNotice` is one year's notice (its days off and make-up working days) read from policy
data; :func:`deadline_with_ref` gives a deadline together with the calendar data it was computed
with (``calendar_ref``), so a deadline can always say which notice it relied on.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Mapping, Protocol
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

    def ref_for(self, first: date, last: date) -> str:
        return "weekdays"


@dataclass(frozen=True)
class YearNotice:
    """One year's holiday notice (节假日安排的通知): whole days off, and make-up working days (调休上班)."""

    year: int
    days_off: frozenset[date]
    working_days: frozenset[date]
    source: str  # the notice: title, number, date
    ref: str  # which data: "cn-2026@<file hash>"

    def is_working_day(self, day: date) -> bool:
        if day in self.working_days:
            return True
        return day not in self.days_off and day.weekday() < 5


def year_notice(data: Mapping[str, Any], ref: str) -> YearNotice:
    """A notice from its policy data (``domain/policies/calendar/cn-<year>.toml``), checked: every day in
    its year, no day both off and working, make-up days only on weekends (else it is not a make-up)."""
    year = int(data["year"])
    off: set[date] = set()
    working: set[date] = set()
    for entry in data.get("holidays", ()):
        first, last = entry["from"], entry["to"]
        if not (isinstance(first, date) and isinstance(last, date)) or last < first:
            raise InvalidValue(f"{ref}: holiday {entry.get('name')!r} needs from <= to (dates)", rule="calendar.data")
        off.update(first + timedelta(days=n) for n in range((last - first).days + 1))
        working.update(entry.get("working_days", ()))
    strays = sorted(d for d in off | working if not isinstance(d, date) or d.year != year)
    if strays:
        raise InvalidValue(f"{ref}: days outside {year}: {strays}", rule="calendar.data")
    if off & working or any(d.weekday() < 5 for d in working):
        raise InvalidValue(f"{ref}: a make-up working day must be a weekend day that is not off", rule="calendar.data")
    source = f"{data.get('title', '')} {data.get('number', '')} ({data.get('issued', '')})".strip()
    return YearNotice(year, frozenset(off), frozenset(working), source, ref)


def calendar_ref(calendar: BusinessCalendar, first: date, last: date) -> str:
    """Which calendar data decided the days from ``first`` to ``last`` (calendars that cannot say: their class)."""
    ref_for = getattr(calendar, "ref_for", None)
    return ref_for(first, last) if ref_for else type(calendar).__name__


def deadline_with_ref(start: datetime, amount: float, unit: str, calendar: BusinessCalendar,
                      tz: ZoneInfo) -> tuple[datetime, str | None]:
    """:func:`add_duration`, and the calendar data it used (None: minutes and hours need no calendar)."""
    deadline = add_duration(start, amount, unit, calendar, tz)
    if unit != "working_days":
        return deadline, None
    return deadline, calendar_ref(calendar, start.astimezone(tz).date(), deadline.astimezone(tz).date())


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
