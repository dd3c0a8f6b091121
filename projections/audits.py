"""The lists of inspection samples and audit engagements (issue 20): one row per sample, one per audit.

A sample's row: status (drawn → inspected), method, stratum, size asked, population size, cases
drawn and inspected so far, who drew it (``auditor``) and when, keyset-paginated by ``seq`` (the
log position of its ``Drawn`` event). An audit's row: status (open → concluded), title, auditor,
the period it covers, when it was opened and concluded, observations so far and the conclusion,
by ``seq`` of its ``Opened`` event. Ids and facts only: inspection notes, observation texts,
scope and summary are free text and stay on the record (``GET /audits/samples/{id}``,
``GET /audits/{id}``).

Filters: ``status``, ``auditor`` and a period (``from``/``to``): for samples the time they were
drawn (``from`` ≤ drawn_at < ``to``), for audits the period under audit, which must overlap
[``from``, ``to``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.context import person
from projections.queries import keyset_page
from projections.rowcache import RowCache
from projections.runtime import Projection
from projections.store import Table, ViewDatabase
from projections.timeutil import occurred_stamp, stamp

SAMPLE_TABLE = Table("rm_sample", columns=(
    ("sample_id", "TEXT"), ("seq", "BIGINT"), ("status", "TEXT"), ("method", "TEXT"), ("stratify_by", "TEXT"),
    ("size", "BIGINT"), ("population_size", "BIGINT"), ("case_count", "BIGINT"), ("inspected_count", "BIGINT"),
    ("auditor", "TEXT"), ("drawn_at", "TEXT"), ("policy_ref", "TEXT"), ("version", "BIGINT")),
    key=("sample_id",), indexes=(("seq",), ("status", "seq"), ("auditor", "seq"), ("drawn_at",)))
AUDIT_TABLE = Table("rm_audit", columns=(
    ("audit_id", "TEXT"), ("seq", "BIGINT"), ("status", "TEXT"), ("title", "TEXT"), ("auditor", "TEXT"),
    ("period_from", "TEXT"), ("period_to", "TEXT"), ("opened_at", "TEXT"), ("concluded_at", "TEXT"),
    ("observation_count", "BIGINT"), ("conclusion", "TEXT"), ("policy_ref", "TEXT"), ("version", "BIGINT")),
    key=("audit_id",), indexes=(("seq",), ("status", "seq"), ("auditor", "seq")))
#: Cursor kinds (a cursor of one list is refused by the other).
SAMPLES, AUDITS = "samples", "audits"


class AuditLists(Projection):
    name = "audits"
    rebuild_weight = 1
    tables = (SAMPLE_TABLE, AUDIT_TABLE)

    @staticmethod
    def _change(rows: RowCache, table: Table, e: Any, **changes: Any) -> None:
        row = rows.get(table.name, str(e.originator_id))
        if row is None:
            raise LookupError(f"{table.name} has no row for {e.originator_id}; its first event was not seen")
        rows.put(table.name, {**row, **changes, "version": e.originator_version})

    def on_Sample_Drawn(self, e: Any, position: int, rows: RowCache) -> None:
        rows.put(SAMPLE_TABLE.name, {
            "sample_id": str(e.originator_id), "seq": position, "status": "drawn", "method": e.method,
            "stratify_by": e.stratify_by, "size": e.size, "population_size": e.population_size,
            "case_count": len(e.case_ids), "inspected_count": 0, "auditor": person(e.meta),
            "drawn_at": occurred_stamp(e), "policy_ref": e.policy_ref, "version": e.originator_version})

    def on_Sample_Inspected(self, e: Any, position: int, rows: RowCache) -> None:
        row = rows.peek(SAMPLE_TABLE.name, str(e.originator_id)) or {}
        inspected = int(row.get("inspected_count") or 0) + 1
        # The aggregate's own rule: inspected once every sampled case has its result.
        status = "inspected" if inspected >= int(row.get("case_count") or 0) else "drawn"
        self._change(rows, SAMPLE_TABLE, e, inspected_count=inspected, status=status)

    def on_AuditEngagement_Opened(self, e: Any, position: int, rows: RowCache) -> None:
        rows.put(AUDIT_TABLE.name, {
            "audit_id": str(e.originator_id), "seq": position, "status": "open", "title": e.title,
            "auditor": e.auditor, "period_from": stamp(e.period_from), "period_to": stamp(e.period_to),
            "opened_at": occurred_stamp(e), "concluded_at": None, "observation_count": 0, "conclusion": None,
            "policy_ref": e.policy_ref, "version": e.originator_version})

    def on_AuditEngagement_Observed(self, e: Any, position: int, rows: RowCache) -> None:
        row = rows.peek(AUDIT_TABLE.name, str(e.originator_id)) or {}
        self._change(rows, AUDIT_TABLE, e, observation_count=int(row.get("observation_count") or 0) + 1)

    def on_AuditEngagement_Concluded(self, e: Any, position: int, rows: RowCache) -> None:
        self._change(rows, AUDIT_TABLE, e, status="concluded", conclusion=e.conclusion, concluded_at=occurred_stamp(e))


def _in(where: list[str], params: list[Any], column: str, values: list[str] | None) -> None:
    if values:
        where.append(f"{column} IN ({', '.join('?' for _ in values)})")
        params.extend(str(v) for v in values)


def list_samples(db: ViewDatabase, *, status: list[str] | None = None, auditor: list[str] | None = None,
                 from_: datetime | None = None, to: datetime | None = None, cursor: str | None = None,
                 limit: int = 50) -> dict[str, Any]:
    """Samples in the order they were drawn; ``from_``/``to``: drawn in [from, to)."""
    return _list(db, SAMPLE_TABLE, SAMPLES, status, auditor, (("drawn_at >= ?", from_), ("drawn_at < ?", to)),
                 cursor, limit)


def list_audits(db: ViewDatabase, *, status: list[str] | None = None, auditor: list[str] | None = None,
                from_: datetime | None = None, to: datetime | None = None, cursor: str | None = None,
                limit: int = 50) -> dict[str, Any]:
    """Audits in the order they were opened; ``from_``/``to``: the audited period overlaps [from, to)."""
    return _list(db, AUDIT_TABLE, AUDITS, status, auditor, (("period_to > ?", from_), ("period_from < ?", to)),
                 cursor, limit)


def _list(db: ViewDatabase, table: Table, kind: str, status: list[str] | None, auditor: list[str] | None,
          bounds: tuple[tuple[str, datetime | None], ...], cursor: str | None, limit: int) -> dict[str, Any]:
    """A page of ``table``: any of ``status``, any of ``auditor``, and each bound condition whose time is given."""
    where: list[str] = []
    params: list[Any] = []
    _in(where, params, "status", status)
    _in(where, params, "auditor", auditor)
    for condition, when in bounds:
        if when is not None:
            where.append(condition)
            params.append(stamp(when))
    return keyset_page(db, table, kind, where, params, cursor, limit)
