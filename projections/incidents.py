"""The incident list: one row per incident (service fault, security incident, data leak).

Kind, level, status, when the impact began, when it was reported, recovered and closed, the hours
from its start to recovery and to closure (what ``targets.incident_recovery_hours`` and
``targets.security_incident_hours`` judge), affected customers and the number of timeline
entries. Keyset-paginated by ``seq`` (log position of the report). Ids and facts only: summaries
and timeline details are personal parts of the events, never read here.
"""

from __future__ import annotations

from typing import Any

from projections.queries import keyset_page
from projections.rowcache import RowCache
from projections.runtime import Projection
from projections.store import Table, ViewDatabase
from projections.timeutil import occurred, occurred_stamp, parse, stamp

INCIDENT_TABLE = Table("rm_incident", columns=(
    ("incident_id", "TEXT"), ("seq", "BIGINT"), ("incident_kind", "TEXT"), ("level", "TEXT"), ("status", "TEXT"),
    ("started_at", "TEXT"), ("reported_at", "TEXT"), ("recovered_at", "TEXT"), ("closed_at", "TEXT"),
    ("recovery_seconds", "BIGINT"), ("handling_seconds", "BIGINT"), ("affected_customers", "BIGINT"),
    ("timeline_entries", "BIGINT"), ("version", "BIGINT")),
    key=("incident_id",), indexes=(("seq",), ("status", "seq"), ("incident_kind", "seq")))
_T = INCIDENT_TABLE.name
FILTERS = ("status", "incident_kind", "level")


class IncidentList(Projection):
    name = "incidents"
    rebuild_weight = 1
    tables = (INCIDENT_TABLE,)

    def _change(self, rows: RowCache, e: Any, **changes: Any) -> dict[str, Any]:
        row = rows.get(_T, str(e.originator_id))
        if row is None:
            raise LookupError(f"rm_incident has no row for {e.originator_id}; its Reported event was not seen")
        row = {**row, **changes, "version": e.originator_version}
        rows.put(_T, row)
        return row

    def _since_start(self, rows: RowCache, e: Any) -> int:
        row = rows.peek(_T, str(e.originator_id))
        return int((occurred(e) - parse(row["started_at"])).total_seconds()) if row else 0

    def on_Incident_Reported(self, e: Any, position: int, rows: RowCache) -> None:
        rows.put(_T, {"incident_id": str(e.originator_id), "seq": position, "incident_kind": e.incident_kind,
                      "level": e.level, "status": "reported", "started_at": stamp(e.started_at),
                      "reported_at": occurred_stamp(e), "recovered_at": None, "closed_at": None,
                      "recovery_seconds": None, "handling_seconds": None,
                      "affected_customers": e.affected_customers, "timeline_entries": 0,
                      "version": e.originator_version})

    def on_Incident_LevelChanged(self, e: Any, position: int, rows: RowCache) -> None:
        self._change(rows, e, level=e.to_level)

    def on_Incident_Noted(self, e: Any, position: int, rows: RowCache) -> None:
        row = rows.peek(_T, str(e.originator_id))
        self._change(rows, e, timeline_entries=(row["timeline_entries"] if row else 0) + 1)

    def on_Incident_Recovered(self, e: Any, position: int, rows: RowCache) -> None:
        self._change(rows, e, status="recovered", recovered_at=occurred_stamp(e),
                     recovery_seconds=self._since_start(rows, e))

    def on_Incident_Closed(self, e: Any, position: int, rows: RowCache) -> None:
        self._change(rows, e, status="closed", closed_at=occurred_stamp(e), handling_seconds=self._since_start(rows, e))


def list_incidents(db: ViewDatabase, criteria: dict[str, list[str]], *, cursor: str | None = None,
                   limit: int = 50) -> dict[str, Any]:
    where, params = [], []
    for name in FILTERS:
        values = criteria.get(name) or []
        if values:
            where.append(f"{name} IN ({', '.join('?' for _ in values)})")
            params.extend(values)
    return keyset_page(db, INCIDENT_TABLE, "incidents", where, params, cursor, limit)
