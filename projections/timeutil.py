"""Times in read models: fixed-width UTC ISO text, so string order is time order in both databases."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo


def parse(value: str | datetime) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"time {value!r} must carry a time zone")
    return moment


def stamp(value: str | datetime) -> str:
    """``2025-09-01T01:00:00.000000Z``: the one spelling of a moment in every read model."""
    return parse(value).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def occurred(event: Any) -> datetime:
    return parse(event.meta["occurred_at"])


def local_day(moment: datetime, tz: ZoneInfo) -> str:
    """The business day (in the policy's time zone) a moment falls on, as ``YYYY-MM-DD``."""
    return moment.astimezone(tz).date().isoformat()


def day_text(value: date | str) -> str:
    return value.isoformat() if isinstance(value, date) else date.fromisoformat(value).isoformat()
