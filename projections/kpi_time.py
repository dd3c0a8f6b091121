"""Event times for the KPI read model: stamps and business days, worked out once per hour.

Nearly every event the KPI counters see needs its time as a read-model stamp
(:func:`projections.timeutil.stamp`) and the business day it falls on in its policy's time zone
(:func:`projections.timeutil.local_day`). Done with datetimes that is a parse and two time-zone
conversions per distinct time — and in a real log nearly every command has a time of its own —
then formatting the result: the biggest single cost of a rebuild. But an offset of whole hours
changes only the date and hour of a time, never its minutes and seconds (one of whole minutes, not
its seconds). So for a time written as ``Context`` writes it (``YYYY-MM-DDTHH:MM:SS[.ffffff]`` and
``±HH:MM`` or ``Z``) the UTC text of its hour (or minute) and its business day are looked up by
that hour (minute) and offset, and the rest of the text is copied. An hour in which the time
zone changes its offset or has its midnight (zones off by half an hour), and any time written
otherwise, go through :mod:`projections.timeutil`. The answers are the same either way
(``tests/kpis/test_kpi_time.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from projections.timeutil import local_day, parse, stamp

#: Entries kept per cache before it starts afresh (memory stays bounded over a long log).
_MAX_ENTRIES = 1 << 16
_SIXTY = frozenset(f"{n:02d}" for n in range(60))
_SIGNS = frozenset("+-")
#: Length of a span key (see :func:`split_time`) -> what its text lacks to be a time, its length
#: in UTC text, and its last instant after its first.
_HOUR_KEY, _MINUTE_KEY = 13 + 6, 16 + 6
_SPANS = {_HOUR_KEY: (":00:00", 13, timedelta(minutes=59, seconds=59, microseconds=999999)),
          _MINUTE_KEY: (":00", 16, timedelta(seconds=59, microseconds=999999))}
_UNKNOWN = object()


def split_time(text: str) -> tuple[str, str] | None:
    """``(span, rest)`` of a time written ``…THH:MM:SS[.ffffff]±HH:MM`` (or ``Z``), None for any
    other spelling. With an offset of whole hours the span is the hour (``…THH±HH:MM``) and the
    rest ``:MM:SS.ffffff``; otherwise the span is the minute (``…THH:MM±HH:MM``), the rest
    ``:SS.ffffff``. Only the rest is checked here: whether the span is a time is for
    :func:`datetime.fromisoformat` to say, once per span (:meth:`EventTimes.utc_span`)."""
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


class EventTimes:
    """Stamps of event times (``occurred_at`` texts), and per time zone their business days."""

    def __init__(self) -> None:
        #: time text -> (its stamp, its span: a key of ``_utc_spans``, None to go through timeutil)
        self._texts: dict[str, tuple[str, str | None]] = {}
        #: span -> its first instant in UTC and that instant's text to the hour (minute), or None
        self._utc_spans: dict[str, tuple[datetime, str] | None] = {}
        self._days: dict[Any, BusinessDays] = {}

    def stamp(self, text: str) -> str:
        """:func:`projections.timeutil.stamp` of an event's time text."""
        known = self._texts.get(text)
        return (known or self._learn(text))[0]

    def days(self, tz: Any) -> BusinessDays:
        """The business days of event times in time zone ``tz``."""
        days = self._days.get(tz)
        if days is None:
            days = self._days[tz] = BusinessDays(self, tz)
        return days

    def span_of(self, text: str) -> str | None:
        """The span of a time text (see :func:`split_time`), None if it goes through timeutil."""
        known = self._texts.get(text)
        return (known or self._learn(text))[1]

    def _learn(self, text: str) -> tuple[str, str | None]:
        parts = split_time(text)
        utc = None if parts is None else self.utc_span(parts[0])
        if utc is None:
            known: tuple[str, str | None] = (stamp(text), None)
        else:
            known = (utc[1] + parts[1] + "Z", parts[0])  # what timeutil writes: UTC, to the microsecond
        if len(self._texts) >= _MAX_ENTRIES:
            self._texts.clear()
        self._texts[text] = known
        return known

    def utc_span(self, span: str) -> tuple[datetime, str] | None:
        found = self._utc_spans.get(span, _UNKNOWN)
        if found is _UNKNOWN:
            found = None
            lacks, kept, _ = _SPANS[len(span)]
            try:
                moment = datetime.fromisoformat(span[:kept] + lacks + span[kept:])
                utc = moment.astimezone(UTC)
                # timeutil reads every "Z" as "+00:00", and spells years before 1000 its own way
                if moment.tzinfo is not None and "Z" not in span and utc.year >= 1000:
                    found = (utc, utc.isoformat()[:kept])
            except (ValueError, OverflowError):
                pass  # timeutil says what is wrong with it
            if len(self._utc_spans) >= _MAX_ENTRIES:
                self._utc_spans.clear()
            self._utc_spans[span] = found
        return found  # type: ignore[return-value]


class BusinessDays:
    """:func:`projections.timeutil.local_day` of event times in one time zone, by the hour (minute)."""

    def __init__(self, times: EventTimes, tz: Any):
        self.times, self.tz = times, tz
        self._by_span: dict[str, str | None] = {}

    def of(self, text: str) -> str:
        span = self.times.span_of(text)
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
        utc = self.times.utc_span(span)
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
