"""The compliance audit's use cases: raise every finding that is due, acknowledge one, report them.

Most rules are decided from the event stream by the findings read model
(``projections.findings``): the audit raises each *pending* suspicion whose ``due_at`` has come.
Rules that look at another subsystem at audit time are in :data:`EXTERNAL_RULES` (name → function
of the ledger and ``as_of`` giving suspicions); add one there to extend the audit.

A finding's id is derived from its rule, subject and discriminator, so raising it again — a
second run, a second instance — conflicts and is counted as ``already_raised``, never duplicated.
Each run writes a report (JSON and CSV) of the findings open after it and those it raised.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable
from uuid import UUID

from domain.context import Context
from domain.errors import PolicyError
from domain.findings import RULES, Finding, Suspicion, beyond_skew
from ledger.errors import ConcurrentUpdate
from projections.findings import FINDING_TABLE, SUSPECT_TABLE, ComplianceFindings, roles_with_need
from projections.runtime import ProjectionRunner
from projections.store import ViewDatabase
from projections.timeutil import parse, stamp
from services.incidents import late_incidents

#: Statuses that end a finding's work: closed after its rectification was verified (four eyes), or
#: acknowledged as standing as it is (it can be neither assigned nor rectified then). Every other status —
#: open, assigned, rectified (awaiting verification), reopened — is open work, and reported as such.
SETTLED_STATUSES = ("closed", "acknowledged")
REPORT_COLUMNS = ("finding_id", "rule", "clause", "subject_kind", "subject_id", "status", "due_at", "raised_at",
                  "new_in_run", "acknowledged_by", "acknowledged_role", "acknowledged_at", "ack_reason", "facts")


def retention_overdue(ledger: Any, as_of: datetime) -> list[Suspicion]:
    """Subjects whose records were past retention and disposable ``grace_days`` ago and are still not
    destroyed (the retention read model's dry-run report, as of ``as_of`` minus the grace)."""
    from services.retention import Retention

    policy = ledger.policies.in_force(as_of, ledger.policy_name)
    grace = timedelta(days=float(policy.rule("audit.retention_not_disposed")["grace_days"]))
    retention = Retention(ledger)
    try:
        rows = retention.report(as_of - grace)
    finally:
        retention.close()
    return [Suspicion("retention_not_disposed", "customer", row["subject"], policy.ref, as_of,
                      {"checked_as_of": (as_of - grace).isoformat(), "records": len(row["records"])})
            for row in rows if row["disposable"]]


#: Rules decided at audit time from another subsystem rather than from events.
EXTERNAL_RULES: dict[str, Callable[[Any, datetime], list[Suspicion]]] = {
    "retention_not_disposed": retention_overdue,
    "incident_targets": late_incidents,  # incident_recovery_late, security_incident_late (issue 19)
}


def rule_status() -> dict[str, str]:
    """Per rule: ``active``, or why it is not (a subsystem it needs is not installed)."""
    status = {key: "active" for key in RULES}
    if roles_with_need() is None:
        status["personal_data_access_without_need"] = "inactive: no access policy (domain/permissions.py)"
    if importlib.util.find_spec("services.retention") is None:
        status["retention_not_disposed"] = "inactive: no retention subsystem (services/retention.py)"
    return status


def record_finding(ledger: Any, suspicion: Suspicion, ctx: Context) -> bool:
    """Raise the finding a suspicion calls for; False if it was raised before (its id is derived)."""
    try:
        policy = ledger.policies.get(suspicion.policy_ref)
    except PolicyError:  # not governed by a service policy (e.g. access events): the one in force then
        policy = ledger.policies.in_force(suspicion.due_at, ledger.policy_name)
    try:
        ledger._save(Finding.record(suspicion=suspicion, policy=policy, ctx=ctx))
    except ConcurrentUpdate:
        return False
    return True


class ComplianceAudit:
    def __init__(self, ledger: Any, db: ViewDatabase | None = None):
        self.ledger = ledger
        self.runner = ProjectionRunner(ledger, [ComplianceFindings(ledger)], db)
        self.runner.ensure_tables()

    @property
    def db(self) -> ViewDatabase:
        return self.runner.db

    def close(self) -> None:
        self.runner.close()

    def run(self, ctx: Context, reports_dir: Path | None = None, run_id: str = "") -> tuple[dict[str, int], dict[str, Any]]:
        """Raise every finding due at ``ctx.occurred_at``; write the run's report files."""
        as_of = ctx.occurred_at
        self.runner.catch_up()
        # The read model suspects any event dated ahead of its recording; the skew that makes it a
        # finding is the ledger's setting, which only this side knows.
        judged = (beyond_skew(s, self.ledger.clock_skew) for s in self._pending(as_of))
        due = [s for s in judged if s is not None]
        for name, rule in EXTERNAL_RULES.items():
            try:
                due += rule(self.ledger, as_of)
            except ImportError:  # the subsystem is not installed: rule_status() says so
                continue
        raised = [str(s.finding_id) for s in due if record_finding(self.ledger, s, ctx)]
        already = len(due) - len(raised)
        self.runner.catch_up()
        report = self.report(as_of, raised, run_id)
        details: dict[str, Any] = {"rules": report["rules"]}
        if reports_dir is not None:
            details.update(write_report(report, Path(reports_dir), as_of, run_id))
        counts = {"due": len(due), "raised": len(raised), "already_raised": already,
                  "open": sum(1 for f in report["findings"] if f["status"] not in SETTLED_STATUSES)}
        return counts, details

    def _pending(self, as_of: datetime) -> list[Suspicion]:
        names = SUSPECT_TABLE.column_names
        with self.db.reading() as cur:
            rows = cur.execute(f"SELECT {', '.join(names)} FROM {SUSPECT_TABLE.name} WHERE status = 'pending' "
                               "AND due_at <= ? ORDER BY seq", (stamp(as_of),)).fetchall()
        out = []
        for values in rows:
            row = dict(zip(names, values))
            out.append(Suspicion(row["rule"], row["subject_kind"], row["subject_id"], row["policy_ref"],
                                 parse(row["due_at"]), json.loads(row["facts"]), row["discriminator"] or ""))
        return out

    def acknowledge(self, finding_id: str | UUID, ctx: Context, expected_version: int | None = None) -> Finding:
        return self.ledger.act("finding", finding_id, "acknowledge", ctx, {}, expected_version)

    def report(self, as_of: datetime, raised: list[str], run_id: str = "") -> dict[str, Any]:
        """Findings that are open work now (any status but :data:`SETTLED_STATUSES`: open, assigned,
        rectified, reopened, each with its own status), plus those this run raised, in log order."""
        names = FINDING_TABLE.column_names
        marks = ", ".join("?" for _ in raised)
        settled = ", ".join("?" for _ in SETTLED_STATUSES)
        where = f"status NOT IN ({settled})" + (f" OR finding_id IN ({marks})" if raised else "")
        with self.db.reading() as cur:
            rows = [dict(zip(names, r)) for r in cur.execute(
                f"SELECT {', '.join(names)} FROM {FINDING_TABLE.name} WHERE {where} ORDER BY seq",
                (*SETTLED_STATUSES, *raised)).fetchall()]
        new = set(raised)
        findings = [{**{k: row[k] for k in REPORT_COLUMNS if k in row}, "facts": json.loads(row["facts"]),
                     "new_in_run": row["finding_id"] in new} for row in rows]
        policy = self.ledger.policies.in_force(as_of, self.ledger.policy_name)
        status = rule_status()
        rules = [{"rule": r.key, "title": r.title, "clause": self._clause(policy, r.policy_entry), "status": status[r.key]}
                 for r in RULES.values()]
        return {"as_of": as_of.isoformat(), "run_id": run_id, "policy": policy.ref, "rules": rules,
                "findings": findings}


    def _clause(self, policy: Any, entry: str) -> str:
        """The clause of a rule's policy entry in the version in force; for a rule that applies an entry of
        a later version (stalled_under_superseded_policy: rules.customer_silence), that version's."""
        try:
            return policy.clause(entry)
        except PolicyError:
            later = [p for p in self.ledger.policies.versions(policy.name) if entry in p.rules]
            if not later:
                raise
            return later[-1].clause(entry)


def write_report(report: dict[str, Any], reports_dir: Path, as_of: datetime, run_id: str) -> dict[str, Any]:
    """``<dir>/compliance/<as_of>-<run>.json`` and ``.csv``; returns their paths and SHA-256."""
    folder = reports_dir / "compliance"
    folder.mkdir(parents=True, exist_ok=True)
    stem = stamp(as_of).replace(":", "").replace("-", "").split(".")[0] + "Z" + (f"-{run_id[:8]}" if run_id else "")
    as_json = json.dumps(report, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=REPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for finding in report["findings"]:
        writer.writerow({**finding, "facts": json.dumps(finding["facts"], ensure_ascii=False, sort_keys=True)})
    as_csv = buffer.getvalue().encode("utf-8")
    out: dict[str, Any] = {}
    for suffix, data in (("json", as_json), ("csv", as_csv)):
        path = folder / f"{stem}.{suffix}"
        path.write_bytes(data)
        out[f"report_{suffix}"] = str(path)
        out[f"report_{suffix}_sha256"] = hashlib.sha256(data).hexdigest()
    return out
