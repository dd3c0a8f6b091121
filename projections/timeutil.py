"""Times in read models: fixed-width UTC ISO text, so string order is time order in both databases.

Nearly every event a read model sees needs its time text as a stamp (:func:`stamp`), and the KPI
read model also the business day it falls on in its policy's time zone (:func:`business_days`).
Done with datetimes that is a parse and a time-zone conversion per distinct time — and in a real
log nearly every command has a time of its own — then formatting the result: the biggest single
cost of a rebuild. But an offset of whole hours changes only the date and hour of a time, never
its minutes and seconds (one of whole minutes, not its seconds). So for a time written as
``Context`` writes it (``YYYY-MM-DDTHH:MM:SS[.ffffff]`` and ``±HH:MM`` or ``Z``) the UTC text of its
hour (or minute) and its business day are looked up by that hour (minute) and offset, and the rest
of the text is copied. An hour in which the time zone changes its offset or has its midnight
(zones off by half an hour), and any time written otherwise, are parsed and converted one by one.
The answers are the same either way (``tests/projections/test_timeutil_spans.py`` checks them
against ``datetime`` and ``zoneinfo`` directly).
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

#: Entries kept per memory of texts, spans or days before it starts afresh (memory stays bounded).
_MAX_ENTRIES = 1 << 16
_SIXTY = frozenset(f"{n:02d}" for n in range(60))
_SIGNS = frozenset("+-")
#: Length of a span key (see :func:`split_time`) -> what its text lacks to be a time, its length
#: in UTC text, and its last instant after its first.
_HOUR_KEY, _MINUTE_KEY = 13 + 6, 16 + 6
_SPANS = {_HOUR_KEY: (":00:00", 13, timedelta(minutes=59, seconds=59, microseconds=999999)),
          _MINUTE_KEY: (":00", 16, timedelta(seconds=59, microseconds=999999))}
_UNKNOWN = object()


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
    return datetime.fromisoformat(value.replace("Z", "+00:00"))  # noqa: FURB162 - any "Z", as always (same answers)


def stamp(value: str | datetime) -> str:
    """``2025-09-01T01:00:00.000000Z``: the one spelling of a moment in every read model."""
    if isinstance(value, str):
        known = _TEXTS.get(value)
        return (known or _learn(value))[0]
    return _stamp(parse(value))


def occurred_stamp(event: Any) -> str:
    """``stamp(occurred(event))``: by the event's own text, mostly one dictionary lookup."""
    text = event.meta["occurred_at"]
    known = _TEXTS.get(text)
    return (known or _learn(text))[0]


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
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    year = utc.year
    if year < 1000:  # isoformat pads the year, strftime does not
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # isoformat(timespec="microseconds") without its "+00:00", put together from ready-made digits:
    # isoformat formats through PyUnicode_FromFormat, several times the cost (a deadline per event).
    two = _TWO_DIGITS
    return (f"{year}-{two[utc.month]}-{two[utc.day]}T{two[utc.hour]}:{two[utc.minute]}:{two[utc.second]}."
            f"{utc.microsecond:06d}Z")


_TWO_DIGITS = tuple(f"{n:02d}" for n in range(100))


def occurred(event: Any) -> datetime:
    return parse(event.meta["occurred_at"])


def local_day(moment: datetime, tz: ZoneInfo) -> str:
    """The business day (in the policy's time zone) a moment falls on, as ``YYYY-MM-DD``."""
    return moment.astimezone(tz).date().isoformat()


def day_text(value: date | str) -> str:
    return value.isoformat() if isinstance(value, date) else date.fromisoformat(value).isoformat()


# -- time texts by the hour ---------------------------------------------------------------------
#: time text -> (its stamp, its span: a key of ``_UTC_SPANS``, None when it is not split)
_TEXTS: dict[str, tuple[str, str | None]] = {}
#: span -> its first instant in UTC and that instant's text to the hour (minute), or None
_UTC_SPANS: dict[str, tuple[datetime, str] | None] = {}


def split_time(text: str) -> tuple[str, str] | None:
    """``(span, rest)`` of a time written ``…THH:MM:SS[.ffffff]±HH:MM`` (or ``Z``), None for any
    other spelling. With an offset of whole hours the span is the hour (``…THH±HH:MM``) and the
    rest ``:MM:SS.ffffff``; otherwise the span is the minute (``…THH:MM±HH:MM``), the rest
    ``:SS.ffffff``. Only the rest is checked here: whether the span is a time is for
    :func:`datetime.fromisoformat` to say, once per span (:func:`_utc_span`)."""
    size = len(text)
    if size == 25 or size == 32:
        offset = text[-6:]
    elif (size == 20 or size == 27) and text[-1] == "Z":
        offset = "+00:00"
    else:
        return None
    if offset[0] not in _SIGNS or text[16] != ":" or text[17:19] not in _SIXTY:
        return None
    if size < 26:
        fraction = ".000000"
    elif text[19] == "." and text[20:26].isdigit() and text.isascii():
        fraction = text[19:26]
    else:
        return None
    if offset[4:] == "00" and text[13] == ":" and text[14:16] in _SIXTY:
        return text[:13] + offset, text[13:19] + fraction
    return text[:16] + offset, text[16:19] + fraction


def _learn(text: str) -> tuple[str, str | None]:
    """The stamp and span of a time text not seen lately (remembered); raises as :func:`parse`
    does for a text that is no time with a time zone."""
    parts = split_time(text)
    utc = None if parts is None else _utc_span(parts[0])
    if utc is None:
        moment = _parse_text(text)
        if moment.tzinfo is None:
            raise ValueError(f"time {text!r} must carry a time zone")
        known: tuple[str, str | None] = (_utc_text(moment), None)
    else:
        known = (utc[1] + parts[1] + "Z", parts[0])  # UTC, to the microsecond, as _utc_text writes it
    if len(_TEXTS) >= _MAX_ENTRIES:
        _TEXTS.clear()
    _TEXTS[text] = known
    return known


def _utc_span(span: str) -> tuple[datetime, str] | None:
    found = _UTC_SPANS.get(span, _UNKNOWN)
    if found is _UNKNOWN:
        found = None
        lacks, kept, _ = _SPANS[len(span)]
        try:
            moment = datetime.fromisoformat(span[:kept] + lacks + span[kept:])
            utc = moment.astimezone(UTC)
            # parse reads every "Z" as "+00:00", and _utc_text spells years before 1000 its own way
            if moment.tzinfo is not None and "Z" not in span and utc.year >= 1000:
                found = (utc, utc.isoformat()[:kept])
        except (ValueError, OverflowError):
            pass  # parse says what is wrong with it
        if len(_UTC_SPANS) >= _MAX_ENTRIES:
            _UTC_SPANS.clear()
        _UTC_SPANS[span] = found
    return found  # type: ignore[return-value]


class BusinessDays:
    """:func:`local_day` of event time texts in one time zone, worked out by the hour (minute)."""

    def __init__(self, tz: Any):
        self.tz = tz
        self._by_span: dict[str, str | None] = {}

    def of(self, text: str) -> str:
        known = _TEXTS.get(text) or _learn(text)
        span = known[1]
        if span is None:
            return local_day(parse(text), self.tz)
        day = self._by_span.get(span, _UNKNOWN)
        if day is _UNKNOWN:
            day = self._day_of_span(span)
        return local_day(parse(text), self.tz) if day is None else day  # type: ignore[return-value]

    def _day_of_span(self, span: str) -> str | None:
        """The business day of every instant of the span; None if the time zone changes its offset
        within it, or has its midnight within it: then each time is converted on its own."""
        day = None
        utc = _utc_span(span)
        if utc is not None:
            try:
                first, last = utc[0].astimezone(self.tz), (utc[0] + _SPANS[len(span)][2]).astimezone(self.tz)
                if first.utcoffset() == last.utcoffset() and first.date() == last.date():
                    day = first.date().isoformat()
            except OverflowError:
                pass
        if len(self._by_span) >= _MAX_ENTRIES:
            self._by_span.clear()
        self._by_span[span] = day
        return day


_DAYS: dict[Any, BusinessDays] = {}


def business_days(tz: Any) -> BusinessDays:
    """The business days of event time texts in time zone ``tz`` (one object per zone)."""
    days = _DAYS.get(tz)
    if days is None:
        days = _DAYS[tz] = BusinessDays(tz)
    return days


def forget() -> None:
    """Empty the memories of time texts, spans and days (they only ever hold right answers)."""
    _TEXTS.clear()
    _UTC_SPANS.clear()
    for days in list(_DAYS.values()):
        days._by_span.clear()


# As a functools cache says it (benchmarks empty every cache between rounds, to start cold).
forget.cache_clear = forget  # type: ignore[attr-defined]
forget.cache_info = _TEXTS.__len__  # type: ignore[attr-defined]
