"""The Chinese business calendar: public holidays and make-up working days (调休).

Year by year from the State Council's notices kept as policy data (``domain/policies/calendar/
cn-<year>.toml``, :class:`domain.calendar.YearNotice`); a year without a notice falls back to the
``holidays`` package, which knows statutory days for every year but make-up working days only for
the years its maintainers have entered (through 2026 in 0.109). :meth:`ref_for` names the data a
computation used, so a deadline records whether a notice or the package decided it.
"""

from __future__ import annotations

import hashlib
import tomllib
from datetime import date
from pathlib import Path

import holidays

from domain.calendar import YearNotice, year_notice
from domain.policy import POLICY_DIR

CALENDAR_DIR = POLICY_DIR / "calendar"


def load_notices(directory: Path | str | None = CALENDAR_DIR) -> dict[int, YearNotice]:
    """Every ``cn-<year>.toml`` in ``directory`` (None: none), by year; the ref holds the file's hash."""
    notices: dict[int, YearNotice] = {}
    if directory is None:
        return notices
    for path in sorted(Path(directory).glob("cn-*.toml")):
        raw = path.read_bytes()
        data = tomllib.loads(raw.decode("utf-8"))
        ref = f"{path.stem}@{hashlib.sha256(raw).hexdigest()[:12]}"
        if path.stem != f"cn-{data.get('year')}":
            raise ValueError(f"{path.name} declares year {data.get('year')}; file name and content must agree")
        notices[int(data["year"])] = year_notice(data, ref)
    return notices


class ChineseBusinessCalendar:
    """A day is a working day unless it is a public holiday, or a weekend that is not a make-up day.

    ``directory``: the notices to load (default: the policy folder's; None: the package alone)."""

    def __init__(self, directory: Path | str | None = CALENDAR_DIR) -> None:
        self.notices = load_notices(directory)
        self._calendar = holidays.China()
        # ``holidays`` answers in about 6.5 µs, and SLA deadlines and due dates ask about the same
        # few hundred days again and again.
        self._working: dict[date, bool] = {}

    def is_working_day(self, day: date) -> bool:
        known = self._working.get(day)
        if known is None:
            notice = self.notices.get(day.year)
            working = notice.is_working_day(day) if notice else self._calendar.is_working_day(day)
            known = self._working[day] = bool(working)
        return known

    def loaded_years(self) -> frozenset[int]:
        return frozenset(self.notices)

    def ref_for(self, first: date, last: date) -> str:
        """The data that decided each year from ``first`` to ``last``, joined with ``+``."""
        return "+".join(self._year_ref(year) for year in range(first.year, last.year + 1))

    def _year_ref(self, year: int) -> str:
        notice = self.notices.get(year)
        return notice.ref if notice else f"holidays-{holidays.__version__}:cn-{year}"
