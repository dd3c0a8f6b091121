"""The Chinese business calendar: public holidays and make-up working days (调休), from ``holidays``."""

from __future__ import annotations

from datetime import date

import holidays


class ChineseBusinessCalendar:
    """A day is a working day unless it is a public holiday, or a weekend that is not a make-up day."""

    def __init__(self) -> None:
        self._calendar = holidays.China()

    def is_working_day(self, day: date) -> bool:
        return bool(self._calendar.is_working_day(day))
