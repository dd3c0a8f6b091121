"""Reading the compliance read models: SLA clocks, findings and job runs (filters, keyset pages, summary).

Pages work like the case lists (``projections.queries``): ordered by ``seq``, the cursor carries
the last ``seq`` of the page. JSON columns (facts, counts, details) are decoded.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Mapping

from projections.findings import FINDING_TABLE
from projections.job_runs import JOB_RUN_TABLE
from projections.queries import _page
from projections.sla_clocks import SLA_CLOCK_TABLE
from projections.store import ViewDatabase
from projections.timeutil import stamp

SLA_FILTERS = {"status": "status", "clock": "clock_key", "case_kind": "case_kind", "case_id": "case_id",
               "breached": "breached", "rung": "rung"}
FINDING_FILTERS = {"rule": "rule", "status": "status", "subject_kind": "subject_kind", "subject_id": "subject_id"}
JOB_RUN_FILTERS = {"job": "job", "status": "status", "trigger": "trigger_kind"}
_NO_DEADLINE = (None, "", frozenset(), None)


def _decoded(page: dict[str, Any], *columns: str) -> dict[str, Any]:
    for row in page["items"]:
        for column in columns:
            row[column] = json.loads(row[column]) if row.get(column) else {}
    return page


def list_sla_clocks(db: ViewDatabase, criteria: Mapping[str, Any], *, as_of: datetime, overdue: bool | None = None,
                    cursor: str | None = None, limit: int = 50) -> dict[str, Any]:
    """Clock runs matching every filter. Overdue = still running and its deadline before ``as_of``."""
    return _page(db, "sla_clock", SLA_CLOCK_TABLE, SLA_FILTERS, criteria,
                 (overdue, "deadline", frozenset({"running"}), as_of), cursor, limit)


def sla_summary(db: ViewDatabase, as_of: datetime) -> list[dict[str, Any]]:
    """Per clock: runs by status, how many are overdue at ``as_of``, recorded as breached, escalated."""
    with db.reading() as cur:
        rows = cur.execute(
            f"SELECT clock_key, status, COUNT(*), SUM(breached), SUM(CASE WHEN escalations > 0 THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN status = 'running' AND deadline IS NOT NULL AND deadline < ? THEN 1 ELSE 0 END) "
            f"FROM {SLA_CLOCK_TABLE.name} GROUP BY clock_key, status", (stamp(as_of),)).fetchall()
    clocks: dict[str, dict[str, Any]] = {}
    for key, status, count, breached, escalated, overdue in rows:
        entry = clocks.setdefault(key, {"clock": key, "running": 0, "paused": 0, "met": 0, "missed": 0,
                                        "overdue": 0, "breached": 0, "escalated": 0})
        entry[status] = entry.get(status, 0) + int(count)
        entry["breached"] += int(breached or 0)
        entry["escalated"] += int(escalated or 0)
        entry["overdue"] += int(overdue or 0)
    return [clocks[k] for k in sorted(clocks)]


def list_findings(db: ViewDatabase, criteria: Mapping[str, Any], *, cursor: str | None = None,
                  limit: int = 50) -> dict[str, Any]:
    return _decoded(_page(db, "finding", FINDING_TABLE, FINDING_FILTERS, criteria, _NO_DEADLINE, cursor, limit), "facts")


def get_finding(db: ViewDatabase, finding_id: str) -> dict[str, Any] | None:
    with db.reading() as cur:
        row = cur.execute(FINDING_TABLE.select_by_key_statement(), (finding_id,)).fetchone()
    if row is None:
        return None
    found = dict(zip(FINDING_TABLE.column_names, row))
    found["facts"] = json.loads(found["facts"])
    return found


def list_job_runs(db: ViewDatabase, criteria: Mapping[str, Any], *, cursor: str | None = None,
                  limit: int = 50) -> dict[str, Any]:
    return _decoded(_page(db, "job_run", JOB_RUN_TABLE, JOB_RUN_FILTERS, criteria, _NO_DEADLINE, cursor, limit),
                    "counts", "details")
