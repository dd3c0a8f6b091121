"""Grouping the KPI counters: by any of their dimensions and by day, week, month or quarter.

Counters are additive per business day, so a group of any period is a sum of days: the database
sums per day and dimension, and days are folded into their ISO week (``2025-W36``), month
(``2025-09``) or quarter (``2025-Q3``) here. A group made by period alone also gets the totals of
the service as a whole: the seconds in its days (availability) and its churn (customers active in
the preceding period of the same length and not in this one).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from projections.kpi_counters import COUNTER_TABLE, DIMENSIONS
from projections.kpi_operations import ACTIVITY_TABLE
from projections.store import ViewDatabase

PERIODS = ("day", "week", "month", "quarter")
GROUPINGS = PERIODS + DIMENSIONS
DAY_SECONDS = 86400


def _week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


PERIOD_LABEL: dict[str, Callable[[date], str]] = {
    "day": date.isoformat, "week": _week, "month": lambda d: f"{d.year}-{d.month:02d}",
    "quarter": lambda d: f"{d.year}-Q{(d.month - 1) // 3 + 1}"}


def parse_grouping(group_by: str) -> tuple[str | None, tuple[str, ...]]:
    """(period or None, dimensions) of ``group_by``, e.g. ``"agent,month"`` → ("month", ("agent",))."""
    parts = [p.strip() for p in (group_by or "").split(",") if p.strip()]
    unknown = [p for p in parts if p not in GROUPINGS]
    if not parts or unknown:
        raise ValueError(f"group_by must be one or more of {', '.join(GROUPINGS)}, comma-separated")
    if len(set(parts)) != len(parts):
        raise ValueError("group_by names a dimension twice")
    periods = [p for p in parts if p in PERIODS]
    if len(periods) > 1:
        raise ValueError("group_by names at most one period (day, week, month or quarter)")
    return (periods[0] if periods else None), tuple(p for p in parts if p not in PERIODS)


def grouped_counters(db: ViewDatabase, first: date, last: date, group_by: str,
                     ) -> tuple[list[tuple[str, dict[str, str], dict[str, int], dict[str, int]]], dict[str, int]]:
    """[(label, dimensions, counters, group totals)] sorted by label, and the dashboard's totals."""
    period, dims = parse_grouping(group_by)
    parts = [p for p in (group_by or "").split(",") if p.strip()]
    order = [p.strip() for p in parts]  # labels name the dimensions in the order asked
    columns = ", ".join(("day", *dims))
    with db.reading() as cur:
        rows = cur.execute(
            f"SELECT {columns}, measure, SUM(value) FROM {COUNTER_TABLE.name} WHERE day >= ? AND day <= ? "
            f"AND measure <> 'customers.registered' GROUP BY {columns}, measure",
            (first.isoformat(), last.isoformat())).fetchall()
        customers = cur.execute(f"SELECT SUM(value) FROM {COUNTER_TABLE.name} WHERE measure = "
                                "'customers.registered' AND day <= ?", (last.isoformat(),)).fetchone()
    groups: dict[tuple[str, ...], dict[str, int]] = {}
    labels: dict[tuple[str, ...], dict[str, str]] = {}
    for row in rows:
        day, values, measure, value = row[0], row[1:1 + len(dims)], row[-2], row[-1]
        named = dict(zip(dims, (str(v) for v in values)))
        if period:
            named[period] = PERIOD_LABEL[period](date.fromisoformat(day))
        key = tuple(named[name] for name in order)
        labels[key] = {name: named[name] for name in order}
        counters = groups.setdefault(key, {})
        counters[measure] = counters.get(measure, 0) + int(value)
    totals = {"customers": int((customers or [0])[0] or 0)}
    whole = not dims  # the service as a whole: availability and churn apply
    spans = _spans(period, first, last) if whole else {}
    activity = _activity(db, first, last, spans) if whole else {}
    out = []
    for key in sorted(groups):
        extra: dict[str, int] = {}
        if whole:
            start, end = spans[key[0]] if period else (first, last)
            extra = {"period_seconds": ((end - start).days + 1) * DAY_SECONDS, **_churn(activity, start, end)}
        out.append((" / ".join(key) if key else "all", labels[key], groups[key], extra))
    return out, totals


def _spans(period: str | None, first: date, last: date) -> dict[str, tuple[date, date]]:
    """Each period label's first and last day within first..last."""
    spans: dict[str, tuple[date, date]] = {}
    if period is None:
        return spans
    day = first
    while day <= last:
        label = PERIOD_LABEL[period](day)
        start, _ = spans.get(label, (day, day))
        spans[label] = (start, day)
        day += timedelta(days=1)
    return spans


def _activity(db: ViewDatabase, first: date, last: date, spans: dict[str, tuple[date, date]]) -> dict[str, set[str]]:
    """Customers active per day, from the start of the longest preceding period to the end."""
    longest = max([(e - s).days + 1 for s, e in spans.values()] or [(last - first).days + 1])
    since = first - timedelta(days=longest)
    by_day: dict[str, set[str]] = {}
    with db.reading() as cur:
        for day, customer in cur.execute(f"SELECT day, customer_id FROM {ACTIVITY_TABLE.name} WHERE day >= ? "
                                         "AND day <= ?", (since.isoformat(), last.isoformat())).fetchall():
            by_day.setdefault(str(day), set()).add(str(customer))
    return by_day


def _churn(activity: dict[str, set[str]], start: date, end: date) -> dict[str, int]:
    length = (end - start).days + 1

    def active(a: date, b: date) -> set[str]:
        found: set[str] = set()
        day = a
        while day <= b:
            found |= activity.get(day.isoformat(), set())
            day += timedelta(days=1)
        return found

    before = active(start - timedelta(days=length), start - timedelta(days=1))
    return {"active_before": len(before), "churned": len(before - active(start, end))}


def valid_grouping(group_by: str) -> bool:
    """Whether ``group_by`` is a grouping :func:`parse_grouping` accepts (for request validation)."""
    try:
        parse_grouping(group_by)
    except ValueError:
        return False
    return True
