"""The Chinese business calendar: public holidays and make-up working days (调休), from ``holidays``."""

from __future__ import annotations

from datetime import date

import holidays


class ChineseBusinessCalendar:
    """A day is a working day unless it is a public holiday, or a weekend that is not a make-up day."""

    def __init__(self) -> None:
        self._calendar = holidays.China()
        # ``holidays`` answers in about 6.5 µs, and SLA deadlines and due dates ask about the same
        # few hundred days again and again.
        self._working: dict[date, bool] = {}

    def is_working_day(self, day: date) -> bool:
        known = self._working.get(day)
        if known is None:
            known = self._working[day] = bool(self._calendar.is_working_day(day))
        return known
