"""Periodic reviews (定期检查): build a review report, write it, sign it, issue it once.

A report of one kind (policy rule ``review.<kind>``, see :mod:`domain.reports`) for one period
states: the period, the policy version, the KPIs against their targets with clauses — exactly what
the dashboard's KPI query (:func:`projections.kpis.dashboard`) answers for that period, since it is
called here rather than recomputed — the findings opened and closed in the period, and the cases
sampled and audits recorded in it (when those subsystems are installed).

The file goes to ``<CASELEDGER_REPORTS_DIR>/reviews/<kind>/<period>-<hash8>.json`` with a signed
note beside it (:mod:`ledger.integrity.report_note`, the log's key), and the ``ReviewReport``
event records its SHA-256. The report id is derived from kind and period: a second run — a
misfire, a rerun, another scheduler instance — finds the report issued, or loses the race on save
and removes the files it wrote; either way one report per kind and period.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from domain.context import Context
from domain.errors import require
from domain.reports import Period, ReviewReport, report_id, review_rule
from ledger.errors import ConcurrentUpdate
from ledger.integrity.report_note import note_path, sign_report
from ledger.keys import LogKeys
from ledger.settings import Settings
from projections.findings import FINDING_TABLE, ComplianceFindings
from projections.kpi_counters import KpiCounters
from projections.kpis import dashboard
from projections.runtime import ProjectionRunner
from projections.timeutil import stamp

FORMAT = "caseledger-review-report/v1"
#: Event modules of the inspection subsystems whose records a review lists (issue #20 items 3 and 4).
INSPECTION_MODULES = {"samples": "domain.sampling", "audits": "domain.audit"}


class ReviewService:
    def __init__(self, ledger: Any, settings: Settings):
        self.ledger, self.settings = ledger, settings
        self.runner = ProjectionRunner(ledger, [KpiCounters(ledger), ComplianceFindings(ledger)])
        self.runner.ensure_tables()

    def close(self) -> None:
        self.runner.close()

    @property
    def folder(self) -> Path:
        return Path(self.settings.reports_dir) / "reviews"

    def policy_for(self, period: Period) -> Any:
        """The policy in force at the end of the period: the one whose targets the dashboard shows."""
        tz = self.ledger.policies.versions(self.ledger.policy_name)[0].tz
        return self.ledger.policies.in_force(datetime.combine(period.last, time(23, 59), tzinfo=tz),
                                             self.ledger.policy_name)

    def period_of(self, kind: str, text: str | None, as_of: datetime) -> Period:
        """``text`` as a period of the kind's unit; by default the last one complete at ``as_of``."""
        policy = self.ledger.policies.in_force(as_of, self.ledger.policy_name)
        unit = str(review_rule(policy, kind)["period"])
        if text:
            return Period.parse(unit, text)
        return Period.last_complete(unit, as_of.astimezone(policy.tz).date())

    def run(self, kind: str, period: Period, ctx: Context) -> tuple[dict[str, int], dict[str, Any]]:
        """Issue the report of ``kind`` for ``period`` unless it is issued already (never twice)."""
        policy = self.policy_for(period)
        rule = review_rule(policy, kind)
        end = datetime.combine(period.last + timedelta(days=1), time(0), tzinfo=policy.tz)
        require(ctx.occurred_at >= end, f"the {period.unit} {period.name} is not over at {ctx.occurred_at.isoformat()}: "
                "a review covers a complete period", rule="review.period_not_over", clause=str(rule.get("source", "")))
        rid = report_id(kind, period.name)
        if self.ledger.exists("review_report", rid):
            return {"issued": 0, "already_issued": 1}, self._recorded(rid)
        report = self.build(kind, period, policy, ctx)
        data = json.dumps(report, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8") + b"\n"
        digest = hashlib.sha256(data).hexdigest()
        keys = LogKeys.from_settings(self.settings)
        note = sign_report(data, kind, period.name, keys.signing_key(), keys.origin)
        path = self.folder / kind / f"{period.name}-{digest[:8]}.json"
        _write_atomically(path, data)
        _write_atomically(note_path(path), note.encode("utf-8"))
        issued = ReviewReport.issue(kind=kind, period=period, policy=policy, file_name=str(path.relative_to(self.folder)),
                                    sha256=digest, signed_by=keys.origin,
                                    signature_sha256=hashlib.sha256(note.encode("utf-8")).hexdigest(), ctx=ctx)
        try:
            self.ledger.record(issued)
        except ConcurrentUpdate:  # another run issued it meanwhile: its files are the report, ours go
            recorded = self._recorded(rid)
            if recorded["file"] != str(path):
                path.unlink(missing_ok=True)
                note_path(path).unlink(missing_ok=True)
            return {"issued": 0, "already_issued": 1}, recorded
        return {"issued": 1, "already_issued": 0}, self._recorded(rid)

    def _recorded(self, rid: Any) -> dict[str, Any]:
        report = self.ledger.get("review_report", rid)
        return {"report_id": str(rid), "kind": report.kind, "period": report.period, "policy": report.policy_ref,
                "file": str(self.folder / report.file_name), "sha256": report.sha256, "signed_by": report.signed_by}

    def build(self, kind: str, period: Period, policy: Any, ctx: Context) -> dict[str, Any]:
        """The report's content (what the file holds)."""
        rule = review_rule(policy, kind)
        self.runner.catch_up()
        kpis = dashboard(self.runner.db, self.ledger, period.first, period.last, "channel")
        start = datetime.combine(period.first, time(0), tzinfo=policy.tz)
        end = datetime.combine(period.last + timedelta(days=1), time(0), tzinfo=policy.tz)
        return {
            "format": FORMAT, "kind": kind, "clause": rule.get("source"), "quote": rule.get("quote"),
            "period": {"name": period.name, "unit": period.unit, "first_day": period.first.isoformat(),
                       "last_day": period.last.isoformat(), "time_zone": policy.timezone},
            "policy": policy.ref, "as_of": ctx.occurred_at.isoformat(), "run": ctx.request_id,
            "kpis": kpis, "findings": self._findings(start, end), **self._inspections(start, end),
        }

    def _findings(self, start: datetime, end: datetime) -> dict[str, Any]:
        """Findings raised in the period, and those closed in it (rectified and closed where the
        read model knows closure, else acknowledged: the only way a finding was disposed of)."""
        names = FINDING_TABLE.column_names
        closed_column = "closed_at" if "closed_at" in names else "acknowledged_at"
        shown = [n for n in ("finding_id", "rule", "clause", "subject_kind", "subject_id", "status", "raised_at",
                             closed_column) if n in names]
        window = (stamp(start), stamp(end))
        with self.runner.db.reading() as cur:
            def rows(column: str) -> list[dict[str, Any]]:
                found = cur.execute(f"SELECT {', '.join(shown)} FROM {FINDING_TABLE.name} WHERE {column} >= ? "
                                    f"AND {column} < ? ORDER BY seq", window).fetchall()
                return [dict(zip(shown, row)) for row in found]

            opened, closed = rows("raised_at"), rows(closed_column)
        by_rule: dict[str, dict[str, int]] = {}
        for name, items in (("opened", opened), ("closed", closed)):
            for item in items:
                by_rule.setdefault(item["rule"], {"opened": 0, "closed": 0})[name] += 1
        return {"closed_means": closed_column, "opened": opened, "closed": closed,
                "by_rule": dict(sorted(by_rule.items()))}

    def _inspections(self, start: datetime, end: datetime) -> dict[str, Any]:
        """Per inspection subsystem: its records with an event in the period and the cases they name."""
        installed = {key: module for key, module in INSPECTION_MODULES.items() if importlib.util.find_spec(module)}
        out: dict[str, Any] = {key: {"installed": key in installed, "records": []} for key in INSPECTION_MODULES}
        if not installed:
            return out
        records: dict[str, dict[str, dict[str, Any]]] = {key: {} for key in installed}
        after = 0
        while page := self.ledger.log(after=after, limit=1000):
            for _, event in page:
                key = next((k for k, m in installed.items() if type(event).__module__ == m), None)
                occurred = (getattr(event, "meta", None) or {}).get("occurred_at")
                if key is None or occurred is None or not start <= datetime.fromisoformat(occurred) < end:
                    continue
                record = records[key].setdefault(str(event.originator_id), {"id": str(event.originator_id),
                                                                            "events": [], "cases": set()})
                record["events"].append(type(event).__qualname__)
                record["cases"] |= _case_ids(event)
                if getattr(event, "result", None) is not None and getattr(event, "case_id", None):
                    record.setdefault("results", {})[str(event.case_id)] = event.result  # an inspection's result
            after = page[-1][0]
        for key, found in records.items():
            out[key]["records"] = [{**r, "cases": sorted(r["cases"])} for r in found.values()]
            out[key]["cases"] = sorted({c for r in found.values() for c in r["cases"]})
        return out


def _case_ids(event: Any) -> set[str]:
    """The case ids an inspection event names (``case_id``, ``case_ids``, ``cases``; ids or objects with one)."""
    found: set[str] = set()
    for name in ("case_id", "case_ids", "cases", "sampled", "ticket_id", "complaint_id"):
        value = getattr(event, name, None)
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, dict):
                item = item.get("case_id") or item.get("id")
            if item:
                found.add(str(item))
    return found


def _write_atomically(path: Path, data: bytes) -> None:
    """Write a file whole or not at all (a crash leaves the old state, never half a report)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial")
    with temporary.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def run_review(ledger: Any, settings: Settings, kind: str, period: str | None,
               ctx: Context) -> tuple[dict[str, int], dict[str, Any]]:
    """One review run (the scheduled job and ``caseledger report run``)."""
    service = ReviewService(ledger, settings)
    try:
        return service.run(kind, service.period_of(kind, period, ctx.occurred_at), ctx)
    finally:
        service.close()
