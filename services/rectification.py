"""The supervision cycle's watches (issue 20): overdue rectifications and calendar data for next year.

- :class:`RectificationWatch` raises ``rectification_overdue`` for every finding awaiting its owner
  past its due date (read model ``projections.rectification``). The new finding's id is derived
  from the overdue finding and its due date, so reruns never duplicate it and a reassignment with a
  new due date that passes again is a new finding.
- :func:`calendar_gaps` / :func:`raise_calendar_gaps` raise ``calendar_data_missing`` from
  ``warn_days`` (policy ``audit.calendar_data_missing``) before the start of a year whose State
  Council holiday notice is not loaded (``ledger.calendar``), and for the current year if it is not.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from domain.context import Context
from domain.findings import Suspicion
from projections.rectification import FindingRectification, overdue
from projections.runtime import ProjectionRunner
from projections.timeutil import parse
from services.compliance import record_finding


class RectificationWatch:
    def __init__(self, ledger: Any):
        self.ledger = ledger
        self.runner = ProjectionRunner(ledger, [FindingRectification(ledger)])
        self.runner.ensure_tables()

    def close(self) -> None:
        self.runner.close()

    def suspicions(self, as_of: datetime) -> list[Suspicion]:
        self.runner.catch_up()
        return [Suspicion("rectification_overdue", "finding", row["finding_id"], row["policy_ref"], parse(row["due_at"]),
                          {"rule": row["rule"], "owner": row["owner"], "team": row["team"], "severity": row["severity"],
                           "due_at": row["due_at"], "status": row["status"]}, row["due_at"])
                for row in overdue(self.runner.db, as_of)]

    def run(self, ctx: Context) -> dict[str, int]:
        due = self.suspicions(ctx.occurred_at)
        raised = sum(record_finding(self.ledger, s, ctx) for s in due)
        return {"overdue": len(due), "raised": raised, "already_raised": len(due) - raised}


def calendar_gaps(ledger: Any, as_of: datetime) -> list[Suspicion]:
    """Years without a loaded notice that have begun, or begin within ``warn_days`` of ``as_of``."""
    loaded = getattr(ledger.calendar, "loaded_years", None)
    if loaded is None:  # a calendar without yearly data (weekdays only): nothing can be missing
        return []
    policy = ledger.policies.in_force(as_of, ledger.policy_name)
    entry = policy.rule("audit.calendar_data_missing")
    warn = timedelta(days=float(entry["warn_days"]))
    today = as_of.astimezone(policy.tz).date()
    years = loaded()
    out = []
    for year in (today.year, today.year + 1):
        starts = datetime.combine(date(year, 1, 1), time(0), tzinfo=policy.tz)
        warn_from = starts - warn
        if year not in years and as_of >= warn_from:
            out.append(Suspicion("calendar_data_missing", "calendar", f"cn-{year}", policy.ref, warn_from,
                                 {"year": year, "year_starts": starts.isoformat(), "loaded_years": sorted(years)}))
    return out


def raise_calendar_gaps(ledger: Any, ctx: Context) -> dict[str, int]:
    due = calendar_gaps(ledger, ctx.occurred_at)
    raised = sum(record_finding(ledger, s, ctx) for s in due)
    return {"missing_years": len(due), "raised": raised, "already_raised": len(due) - raised}
