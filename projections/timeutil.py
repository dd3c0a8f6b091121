"""Times in read models: fixed-width UTC ISO text, so string order is time order in both databases."""

from __future__ import annotations

import functools
from datetime import date, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo


def parse(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        moment = _parse_text(value if isinstance(value, str) else str(value))
    if moment.tzinfo is None:
        raise ValueError(f"time {value!r} must carry a time zone")
    return moment


@functools.lru_cache(maxsize=1 << 16)
def _parse_text(value: str) -> datetime:
    # Events of one command share their business time, and several read models parse it: cached.
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def stamp(value: str | datetime) -> str:
    """``2025-09-01T01:00:00.000000Z``: the one spelling of a moment in every read model."""
    if isinstance(value, str):
        return _stamp_text(value)
    return _stamp(parse(value))


@functools.lru_cache(maxsize=1 << 16)
def _stamp_text(value: str) -> str:
    # Not through _stamp's cache: a new text is nearly always a new moment. Through _parse_text's:
    # other read models parse the same event's time.
    moment = _parse_text(value)
    if moment.tzinfo is None:
        raise ValueError(f"time {value!r} must carry a time zone")
    return _utc_text(moment)


def stamp_once(moment: datetime) -> str:
    """``stamp(moment)`` without its cache: for moments seldom stamped twice (a clock's deadline
    moves with each change of the run), where filling the cache costs more than it saves."""
    if moment.tzinfo is None:
        raise ValueError(f"time {moment!r} must carry a time zone")
    return _utc_text(moment)


@functools.lru_cache(maxsize=1 << 16)
def _stamp(moment: datetime) -> str:
    # Keyed by the instant (datetimes of equal instants are equal), which is all the text depends on.
    return _utc_text(moment)


def _utc_text(moment: datetime) -> str:
    utc = moment if moment.tzinfo is timezone.utc else moment.astimezone(timezone.utc)
    if utc.year < 1000:  # isoformat pads the year, strftime does not
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.isoformat(timespec="microseconds")[:-6] + "Z"  # without its "+00:00"


def occurred(event: Any) -> datetime:
    return parse(event.meta["occurred_at"])


def occurred_stamp(event: Any) -> str:
    """``stamp(occurred(event))`` with one cache lookup (by the event's own text)."""
    return _stamp_text(event.meta["occurred_at"])


def local_day(moment: datetime, tz: ZoneInfo) -> str:
    """The business day (in the policy's time zone) a moment falls on, as ``YYYY-MM-DD``. (Not
    cached here: its one caller, the KPI read model, caches by the event's time text.)"""
    return moment.astimezone(tz).date().isoformat()


def day_text(value: date | str) -> str:
    return value.isoformat() if isinstance(value, date) else date.fromisoformat(value).isoformat()
