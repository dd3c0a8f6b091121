"""Compliance findings: the audit facts of every case, the suspicions they raise, and the findings.

- ``rm_audit_case``: per interaction, ticket and complaint, the facts the audit rules need
  (:class:`domain.findings.CaseAudit`, JSON; ids and facts only, never personal data).
- ``rm_audit_suspect``: one row per possible finding (keyed by the finding id it would get):
  ``pending`` from ``due_at`` on, ``cleared`` when it turned out fine in time (e.g. the contact was
  registered within the grace time), ``raised`` once the audit job recorded the finding. The
  audit job reads ``pending`` rows with ``due_at <= as_of``; time-dependent rules need no rescan.
- ``rm_finding``: the findings themselves, from ``Finding`` events: rule, clause, subject, status
  (open / acknowledged), who acknowledged it, when and why.

``seq`` (keyset order) is the log position of the event × 16 + its place among that event's rows.
"""

from __future__ import annotations

import json
from typing import Any

from domain.findings import CaseAudit, Clearance, Suspicion, standalone_suspicions
from projections.runtime import Projection
from projections.store import RowCache, Table
from projections.timeutil import occurred, stamp

AUDIT_CASE_TABLE = Table("rm_audit_case", columns=(("case_id", "TEXT"), ("kind", "TEXT"), ("policy_ref", "TEXT"),
                                                   ("facts", "TEXT")), key=("case_id",))
SUSPECT_TABLE = Table(
    "rm_audit_suspect",
    columns=(("finding_id", "TEXT"), ("seq", "BIGINT"), ("rule", "TEXT"), ("subject_kind", "TEXT"),
             ("subject_id", "TEXT"), ("policy_ref", "TEXT"), ("due_at", "TEXT"), ("status", "TEXT"),
             ("discriminator", "TEXT"), ("facts", "TEXT")),
    key=("finding_id",), indexes=(("status", "due_at"),))
FINDING_TABLE = Table(
    "rm_finding",
    columns=(("finding_id", "TEXT"), ("seq", "BIGINT"), ("rule", "TEXT"), ("clause", "TEXT"), ("subject_kind", "TEXT"),
             ("subject_id", "TEXT"), ("policy_ref", "TEXT"), ("status", "TEXT"), ("due_at", "TEXT"),
             ("raised_at", "TEXT"), ("raised_by_run", "TEXT"), ("facts", "TEXT"), ("acknowledged_by", "TEXT"),
             ("acknowledged_role", "TEXT"), ("acknowledged_at", "TEXT"), ("ack_reason", "TEXT"), ("version", "BIGINT")),
    key=("finding_id",), indexes=(("seq",), ("status", "seq"), ("rule", "seq"), ("subject_id",)))
_SEQ_SLOTS = 16


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def roles_with_need() -> frozenset[str] | None:
    """Roles the access policy lets read personal data unmasked; None when there is no access policy."""
    try:
        from ledger.access import UNMASK, AccessPolicy

        policy = AccessPolicy.load()
    except (ImportError, OSError):
        return None
    return frozenset(role for role in policy.roles if policy.scope(role, UNMASK) is not None)


class ComplianceFindings(Projection):
    name = "compliance_findings"
    tables = (AUDIT_CASE_TABLE, SUSPECT_TABLE, FINDING_TABLE)

    def __init__(self, ledger: Any):
        super().__init__(ledger)
        self.roles_with_need = roles_with_need()

    def apply(self, event: Any, position: int, rows: RowCache) -> None:
        name = type(event).__qualname__
        if name.startswith("Finding."):
            self._finding_event(name, event, position, rows)
            return
        results: list[Suspicion | Clearance] = list(standalone_suspicions(event, self.roles_with_need))
        kind = CaseAudit.KINDS.get(name.split(".", 1)[0])
        if kind and hasattr(CaseAudit, "_" + name.replace(".", "_")):
            results += self._audit(kind, event, rows)
        for index, item in enumerate(results):
            self._note(item, position * _SEQ_SLOTS + index, rows)

    def _audit(self, kind: str, event: Any, rows: RowCache) -> list[Suspicion | Clearance]:
        case_id = str(event.originator_id)
        row = rows.get(AUDIT_CASE_TABLE.name, case_id)
        if row is None:
            row = {"case_id": case_id, "kind": kind, "policy_ref": getattr(event, "policy_ref", None) or event.meta["policy"],
                   "facts": "{}"}
        related: dict[str, Any] = {}
        if kind == "ticket" and getattr(event, "interaction_id", None) and event.originator_version == 1:
            contact = rows.get(AUDIT_CASE_TABLE.name, str(event.interaction_id))
            related = json.loads(contact["facts"]) if contact else {}
        audit = CaseAudit(kind, case_id, row["policy_ref"], json.loads(row["facts"]))
        found = audit.apply(event, self.ledger.policies.get(row["policy_ref"]), related=related)
        row["facts"] = _json(audit.facts)
        rows.put(AUDIT_CASE_TABLE.name, row)
        return found

    def _note(self, item: Suspicion | Clearance, seq: int, rows: RowCache) -> None:
        key = str(item.finding_id)
        row = rows.get(SUSPECT_TABLE.name, key)
        if isinstance(item, Clearance):
            if row is not None and row["status"] == "pending":
                rows.put(SUSPECT_TABLE.name, {**row, "status": "cleared"})
            return
        if row is None:
            rows.put(SUSPECT_TABLE.name, {
                "finding_id": key, "seq": seq, "rule": item.rule, "subject_kind": item.subject_kind,
                "subject_id": item.subject_id, "policy_ref": item.policy_ref, "due_at": stamp(item.due_at),
                "status": "pending", "discriminator": item.discriminator, "facts": _json(dict(item.facts))})

    def _finding_event(self, name: str, e: Any, position: int, rows: RowCache) -> None:
        key = str(e.originator_id)
        if name == "Finding.Raised":
            rows.put(FINDING_TABLE.name, {
                "finding_id": key, "seq": position * _SEQ_SLOTS, "rule": e.rule, "clause": e.clause,
                "subject_kind": e.subject_kind, "subject_id": e.subject_id, "policy_ref": e.policy_ref,
                "status": "open", "due_at": stamp(e.due_at), "raised_at": stamp(occurred(e)),
                "raised_by_run": e.meta.get("request_id"), "facts": _json(e.facts), "acknowledged_by": None,
                "acknowledged_role": None, "acknowledged_at": None, "ack_reason": None,
                "version": e.originator_version})
            suspect = rows.get(SUSPECT_TABLE.name, key)
            if suspect is not None:
                rows.put(SUSPECT_TABLE.name, {**suspect, "status": "raised"})
        elif name == "Finding.Acknowledged":
            row = rows.get(FINDING_TABLE.name, key)
            if row is None:
                raise LookupError(f"rm_finding has no row for {key}; its Raised event was not seen")
            rows.put(FINDING_TABLE.name, {**row, "status": "acknowledged", "acknowledged_by": e.meta["actor_id"],
                                          "acknowledged_role": e.meta["actor_role"],
                                          "acknowledged_at": stamp(occurred(e)), "ack_reason": e.meta.get("reason"),
                                          "version": e.originator_version})
