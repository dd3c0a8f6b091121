"""Rectification of findings (整改): one row per finding, with where its rectification stands.

``rm_finding_rectification``: the finding's rule, its status (open, acknowledged, assigned,
rectified, closed, reopened), owner, team, severity, when it is due and when each step happened —
ids and facts only. From it: the findings whose rectification is overdue (:func:`overdue`, read by
``services.rectification``) and the KPIs open / overdue / closed by rule and team
(:func:`finding_kpis`). A reassignment replaces owner, team and due date; the row keeps the latest.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from projections.rowcache import RowCache
from projections.runtime import Projection
from projections.store import Table, ViewDatabase
from projections.timeutil import occurred_stamp, stamp

RECTIFICATION_TABLE = Table(
    "rm_finding_rectification",
    columns=(("finding_id", "TEXT"), ("seq", "BIGINT"), ("rule", "TEXT"), ("policy_ref", "TEXT"), ("status", "TEXT"),
             ("owner", "TEXT"), ("team", "TEXT"), ("severity", "TEXT"), ("raised_at", "TEXT"),
             ("assigned_at", "TEXT"), ("due_at", "TEXT"), ("rectified_at", "TEXT"), ("rectified_by", "TEXT"),
             ("evidence_count", "BIGINT"), ("closed_at", "TEXT"), ("closed_by", "TEXT"), ("reopen_count", "BIGINT"),
             ("version", "BIGINT")),
    key=("finding_id",), indexes=(("status", "due_at"), ("rule",), ("team",)))
#: Statuses in which a rectification is awaited from the owner (so it can be overdue).
AWAITING_OWNER = ("assigned", "reopened")
#: Statuses a finding is no longer open in.
SETTLED = ("closed", "acknowledged")


class FindingRectification(Projection):
    name = "finding_rectification"
    rebuild_weight = 1
    tables = (RECTIFICATION_TABLE,)

    def on_Finding_Raised(self, e: Any, position: int, rows: RowCache) -> None:
        rows.put(RECTIFICATION_TABLE.name, {
            "finding_id": str(e.originator_id), "seq": position, "rule": e.rule, "policy_ref": e.policy_ref,
            "status": "open", "owner": None, "team": None, "severity": None, "raised_at": occurred_stamp(e),
            "assigned_at": None, "due_at": None, "rectified_at": None, "rectified_by": None, "evidence_count": 0,
            "closed_at": None, "closed_by": None, "reopen_count": 0, "version": e.originator_version})

    def _step(self, e: Any, rows: RowCache, **changes: Any) -> None:
        key = str(e.originator_id)
        row = rows.get(RECTIFICATION_TABLE.name, key)
        if row is None:
            raise LookupError(f"{RECTIFICATION_TABLE.name} has no row for {key}; its Raised event was not seen")
        rows.put(RECTIFICATION_TABLE.name, {**row, **changes, "version": e.originator_version})

    def on_Finding_Acknowledged(self, e: Any, position: int, rows: RowCache) -> None:
        self._step(e, rows, status="acknowledged")

    def on_Finding_Assigned(self, e: Any, position: int, rows: RowCache) -> None:
        self._step(e, rows, status="assigned", owner=e.owner, team=e.team, severity=e.severity,
                   assigned_at=occurred_stamp(e), due_at=stamp(e.due_at))

    def on_Finding_Rectified(self, e: Any, position: int, rows: RowCache) -> None:
        self._step(e, rows, status="rectified", rectified_at=occurred_stamp(e),
                   rectified_by=e.meta.get("performed_by") or e.meta["actor_id"], evidence_count=len(e.evidence))

    def on_Finding_Closed(self, e: Any, position: int, rows: RowCache) -> None:
        self._step(e, rows, status="closed", closed_at=occurred_stamp(e),
                   closed_by=e.meta.get("performed_by") or e.meta["actor_id"])

    def on_Finding_Reopened(self, e: Any, position: int, rows: RowCache) -> None:
        key = str(e.originator_id)
        row = rows.peek(RECTIFICATION_TABLE.name, key) or {}
        self._step(e, rows, status="reopened", closed_at=None, closed_by=None,
                   reopen_count=int(row.get("reopen_count") or 0) + 1)


def _rows(db: ViewDatabase, where: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    names = RECTIFICATION_TABLE.column_names
    with db.reading() as cur:
        found = cur.execute(f"SELECT {', '.join(names)} FROM {RECTIFICATION_TABLE.name} WHERE {where} ORDER BY seq",
                            params).fetchall()
    return [dict(zip(names, values)) for values in found]


def overdue(db: ViewDatabase, as_of: datetime) -> list[dict[str, Any]]:
    """Findings awaiting their owner's rectification whose due date has passed at ``as_of``."""
    marks = ", ".join("?" for _ in AWAITING_OWNER)
    return _rows(db, f"status IN ({marks}) AND due_at < ?", (*AWAITING_OWNER, stamp(as_of)))


def get_rectification(db: ViewDatabase, finding_id: str) -> dict[str, Any] | None:
    found = _rows(db, "finding_id = ?", (finding_id,))
    return found[0] if found else None


def finding_kpis(db: ViewDatabase, as_of: datetime, by: tuple[str, ...] = ("rule", "team")) -> list[dict[str, Any]]:
    """Per group (``rule`` and/or ``team``; a finding without a team counts under none): findings
    raised by ``as_of`` still open (any status but closed or acknowledged), of those the overdue ones
    (awaiting the owner past the due date at ``as_of``), and the closed ones."""
    unknown = set(by) - {"rule", "team"}
    if unknown:
        raise ValueError(f"findings group by rule or team, not {sorted(unknown)}")
    at = stamp(as_of)
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in _rows(db, "raised_at <= ?", (at,)):
        key = tuple(row[name] for name in by)
        group = groups.setdefault(key, {**dict(zip(by, key)), "open": 0, "overdue": 0, "closed": 0})
        if row["status"] == "closed":
            group["closed"] += 1
        elif row["status"] not in SETTLED:
            group["open"] += 1
            if row["status"] in AWAITING_OWNER and row["due_at"] < at:
                group["overdue"] += 1
    return [groups[key] for key in sorted(groups, key=lambda k: tuple("" if v is None else str(v) for v in k))]
