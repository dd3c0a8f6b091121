"""Compliance findings: the audit facts of every case, the suspicions they raise, and the findings.

- ``rm_audit_case``: per interaction, ticket and complaint, the facts the audit rules need
  (:class:`domain.findings.CaseAudit`, JSON; ids and facts only, never personal data).
- ``rm_audit_suspect``: one row per possible finding (keyed by the finding id it would get):
  ``pending`` from ``due_at`` on, ``raised`` once the audit job recorded the finding. The audit
  job reads ``pending`` rows with ``due_at <= as_of``; time-dependent rules need no rescan. A
  suspicion that turns out fine in time (e.g. the contact was registered within the grace time)
  is deleted: the table is the audit's work list, not a history (the log is), and nearly every
  contact raises two suspicions that its next events clear — kept, they would be most of the
  table, and of the cost of a rebuild. (Version 1 kept them as ``cleared``.)
- ``rm_finding``: the findings themselves, from ``Finding`` events: rule, clause, subject, status
  (open / acknowledged, or a step of its rectification: assigned / rectified / closed / reopened),
  who acknowledged it, when and why. The rectification's own facts (owner, team, severity, due
  date, evidence) are in ``projections.rectification``.

``seq`` (keyset order) is the log position of the event × 16 + its place among that event's rows.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC
from types import MappingProxyType
from typing import Any, NamedTuple

from domain.case_audit import CaseClearance, CaseSuspicion, Fold, Verdict
from domain.event_rules import ONE_EVENT_RULES
from domain.findings import (
    STANDALONE_EVENTS,
    CaseAudit,
    finding_key,
    standalone_suspicions,
)
from projections.failures import ProjectionFailed
from projections.jsontext import json_writer
from projections.rowcache import RowCache
from projections.runtime import Projection
from projections.store import Codec, Table
from projections.timeutil import occurred_stamp, parse, stamp

_json = json_writer(sort_keys=True, ensure_ascii=False, separators=(",", ":"))
#: The facts of cases and suspicions: dicts while projecting, written as JSON once per batch.
FACTS = (("facts", Codec(encode=_json, decode=json.loads)),)

AUDIT_CASE_TABLE = Table("rm_audit_case", columns=(("case_id", "TEXT"), ("kind", "TEXT"), ("policy_ref", "TEXT"),
                                                   ("facts", "TEXT")), key=("case_id",), codecs=FACTS)
SUSPECT_TABLE = Table(
    "rm_audit_suspect",
    columns=(("finding_id", "TEXT"), ("seq", "BIGINT"), ("rule", "TEXT"), ("subject_kind", "TEXT"),
             ("subject_id", "TEXT"), ("policy_ref", "TEXT"), ("due_at", "TEXT"), ("status", "TEXT"),
             ("discriminator", "TEXT"), ("facts", "TEXT")),
    key=("finding_id",), indexes=(("status", "due_at"),), codecs=FACTS)
FINDING_TABLE = Table(
    "rm_finding",
    columns=(("finding_id", "TEXT"), ("seq", "BIGINT"), ("rule", "TEXT"), ("clause", "TEXT"), ("subject_kind", "TEXT"),
             ("subject_id", "TEXT"), ("policy_ref", "TEXT"), ("status", "TEXT"), ("due_at", "TEXT"),
             ("raised_at", "TEXT"), ("raised_by_run", "TEXT"), ("facts", "TEXT"), ("acknowledged_by", "TEXT"),
             ("acknowledged_role", "TEXT"), ("acknowledged_at", "TEXT"), ("ack_reason", "TEXT"), ("version", "BIGINT")),
    key=("finding_id",), indexes=(("seq",), ("status", "seq"), ("rule", "seq"), ("subject_id",)))
_SEQ_SLOTS = 16
#: The status each step of a finding's rectification leaves it in (domain.findings.Finding).
_RECTIFICATION_STATUS = {"Finding.Assigned": "assigned", "Finding.Rectified": "rectified", "Finding.Closed": "closed",
                         "Finding.Reopened": "reopened"}
_NOTHING = object()  # never equal to a due time
_UNSEEN = object()  # a class not resolved yet
_NO_FACTS: Mapping[str, Any] = MappingProxyType({})  # no related case


def roles_with_need() -> frozenset[str] | None:
    """Roles the access policy lets read personal data unmasked; None when there is no access policy."""
    try:
        from domain.permissions import UNMASK, AccessPolicy

        policy = AccessPolicy.load()
    except (ImportError, OSError):
        return None
    return frozenset(role for role in policy.roles if policy.scope(role, UNMASK) is not None)


class _Plan(NamedTuple):
    """What the audit does with the events of one class (:meth:`ComplianceFindings.resolve`)."""

    kind: str  # of case, when a case rule folds them
    fold: Fold | None  # that rule's fold (domain.case_audit.CaseAudit.fold_of)
    standalone: str | None  # "every": a one-event rule reads each; "ahead": only the business-time rule


class _Batch:
    """What the handlers share while one batch is folded (:meth:`ComplianceFindings.apply_batch`)."""

    __slots__ = ("cases", "fresh", "pending")

    def __init__(self) -> None:
        #: Case id → its facts (its row, already put: folded in place) and the audit of its kind and policy.
        self.cases: dict[str, tuple[dict[str, Any], CaseAudit]] = {}
        #: Cases that had no row before this batch: nothing is suspected of them but what ``pending`` holds.
        self.fresh: set[str] = set()
        #: (case id, rule, discriminator) → (seq, suspicion, audit): suspicions of fresh cases, not yet rows.
        self.pending: dict[tuple[str, str, str], tuple[int, CaseSuspicion, CaseAudit]] = {}


class ComplianceFindings(Projection):
    """Folds each batch (:meth:`apply_batch`): a case's row is looked up and put once per batch, and the
    suspicions of a case new in the batch are kept as the rules report them until the batch ends.

    Nearly every contact raises two suspicions that its next events, usually in the same batch,
    clear. Made into rows at once, each would cost a finding id (a SHA-1), a row and its deletion;
    kept in ``pending`` instead, a clearance just drops it, and only those still pending at the end
    become rows. That is exact because nothing can be suspected of a case before its first event:
    every case rule's suspicion is about the case folded, whose row is put first and never deleted,
    and the one-event rules use other rules' names. So the table holds no suspicion of a case that had no
    row before the batch, and ``pending`` alone says what exists: a suspicion already pending is
    kept as it is, a clearance deletes. A ``Finding.Raised`` event marks a suspicion's row raised,
    so the pending ones become rows first.
    """

    name = "compliance_findings"
    version = 5  # 5: closures by the stalled-cases job (not violations); 4: the rectification steps set the status; 3: business time ahead checked, dispositions followed
    rebuild_weight = 27
    tables = (AUDIT_CASE_TABLE, SUSPECT_TABLE, FINDING_TABLE)

    def __init__(self, ledger: Any):
        super().__init__(ledger)
        self.roles_with_need = roles_with_need()
        self._audits: dict[tuple[str, str], CaseAudit] = {}  # (kind, policy_ref): policies never change
        # The last due time stamped, and its stamp: a contact's two suspicions are usually due at once.
        self._last_due: tuple[Any, str] = (_NOTHING, "")
        self._batch = _Batch()

    def resolve(self, cls: type) -> _Plan | Callable[..., None] | None:
        """What :meth:`apply_batch` does with events of class ``cls``: a handler to call (``Finding``
        events), a :class:`_Plan` (the rules that read it), or None (no rule looks at it)."""
        name = cls.__qualname__
        if name.startswith("Finding."):
            return functools.partial(self._finding_event, name)
        fold = CaseAudit.fold_of(name)
        # "every": a one-event rule reads each of these; "ahead": only the business-time rule reads it.
        standalone = "every" if name in ONE_EVENT_RULES else "ahead" if name in STANDALONE_EVENTS else None
        if fold is None and standalone is None:
            return None
        return _Plan(CaseAudit.KINDS[name.split(".", 1)[0]] if fold else "", fold, standalone)

    def apply(self, event: Any, position: int, rows: RowCache) -> None:
        self.apply_batch([(position, "", event)], rows)

    def apply_batch(self, events: Sequence[tuple[int, str, Any]], rows: RowCache) -> None:
        """Apply (position, topic, event)s in log order (written out in one loop: a rebuild runs it for
        every event of the log); the first failure raises :class:`ProjectionFailed`."""
        batch = self._batch = _Batch()  # a failed batch's is dropped, as the runner drops its cache
        handlers, cases, fresh, pending = self._handlers, batch.cases, batch.fresh, batch.pending
        # The business time parsed last (in UTC): a command's events, one after another in the log, share it.
        seen_text, seen_at = None, None
        position, topic = 0, ""
        try:
            for position, topic, event in events:
                plan = handlers.get(type(event), _UNSEEN)
                if plan is _UNSEEN:
                    plan = handlers[type(event)] = self._resolve(type(event))
                if plan is None:
                    continue
                if type(plan) is not _Plan:
                    plan(event, position, rows)  # a Finding event, or one that could not be decoded
                    continue
                kind, fold, standalone = plan
                if fold is not None:
                    case_id = str(event.originator_id)
                    facts, audit = cases.get(case_id) or self._open_case(kind, case_id, event, rows)
                    found = fold(audit, facts, event, _NO_FACTS if kind != "ticket" else self._related(kind, event, rows))
                seq = position * _SEQ_SLOTS
                # Nearly every event is dated at or before its recording: then, unless a one-event rule
                # reads its class, standalone_suspicions finds nothing, and is not asked.
                if standalone == "ahead":
                    text = event.meta["occurred_at"]
                    if text != seen_text:
                        seen_at, seen_text = parse(text).astimezone(UTC), text
                    if seen_at > event.timestamp:  # in UTC, as the recording time: no offsets to ask for
                        seq = self._standalone(event, seq, rows)  # they take the first seq slots
                elif standalone is not None:
                    seq = self._standalone(event, seq, rows)
                if fold is None or not found:
                    continue
                if case_id not in fresh:
                    self._found(kind, case_id, audit, found, seq, rows)
                    continue
                for item in found:
                    slot = (case_id, item.rule, item.discriminator)
                    if type(item) is CaseClearance:
                        pending.pop(slot, None)
                    elif slot not in pending:
                        pending[slot] = (seq, item, audit)
                    seq += 1
        except Exception as e:
            raise ProjectionFailed(self.name, position, topic, e) from e
        self._settle(rows)

    @staticmethod
    def _related(kind: str, event: Any, rows: RowCache) -> Mapping[str, Any]:
        """The facts of the interaction a ticket was opened from (its first event names it)."""
        if kind == "ticket" and getattr(event, "interaction_id", None) and event.originator_version == 1:
            contact = rows.peek(AUDIT_CASE_TABLE.name, str(event.interaction_id))
            return contact["facts"] if contact else _NO_FACTS
        return _NO_FACTS

    def _found(self, kind: str, case_id: str, audit: CaseAudit, found: list[Verdict], seq: int,
               rows: RowCache) -> None:
        """What the rules report of a case that had a row before the batch, applied to the rows at once."""
        for item in found:
            key = finding_key(item.rule, kind, case_id, item.discriminator)
            if type(item) is CaseClearance:
                self._clear(key, rows)
            else:
                self._suspect(key, seq, item.rule, kind, case_id, audit.policy_ref, item.due_at, item.discriminator,
                              item.facts, rows)
            seq += 1

    def _settle(self, rows: RowCache) -> None:
        """The suspicions still pending become rows; their cases are fresh no more."""
        batch = self._batch
        for (case_id, rule, discriminator), (seq, found, audit) in batch.pending.items():
            self._suspect(finding_key(rule, audit.kind, case_id, discriminator), seq, rule, audit.kind, case_id,
                          audit.policy_ref, found.due_at, discriminator, found.facts, rows)
        batch.pending.clear()
        batch.fresh.clear()

    def _standalone(self, event: Any, seq: int, rows: RowCache) -> int:
        """The one-event rules' suspicions, from slot ``seq`` on; the next free slot."""
        for item in standalone_suspicions(event, self.roles_with_need):
            self._suspect(item.finding_key, seq, item.rule, item.subject_kind, item.subject_id, item.policy_ref,
                          item.due_at, item.discriminator, item.facts, rows)
            seq += 1
        return seq

    def _open_case(self, kind: str, case_id: str, event: Any, rows: RowCache) -> tuple[dict[str, Any], CaseAudit]:
        """A case's first event in the batch: its row (put now, its facts folded in place afterwards: if
        the fold fails, the runner throws the batch's cache away, so a half-folded row is never kept)."""
        row = rows.peek(AUDIT_CASE_TABLE.name, case_id)
        if row is None:
            row = {"case_id": case_id, "kind": kind, "policy_ref": getattr(event, "policy_ref", None) or event.meta["policy"],
                   "facts": {}}
            self._batch.fresh.add(case_id)
        rows.put(AUDIT_CASE_TABLE.name, row)
        audit = self._audits.get((kind, row["policy_ref"])) or self._new_audit(kind, row["policy_ref"])
        case = self._batch.cases[case_id] = (row["facts"], audit)
        return case

    def _new_audit(self, kind: str, policy_ref: str) -> CaseAudit:
        audit = self._audits[kind, policy_ref] = CaseAudit(kind, policy_ref, self.ledger.policies.get(policy_ref))
        return audit

    def _suspect(self, key: str, seq: int, rule: str, subject_kind: str, subject_id: str, policy_ref: str,
                 due_at: Any, discriminator: str, facts: Mapping[str, Any], rows: RowCache) -> None:
        if rows.peek(SUSPECT_TABLE.name, key) is not None:
            return
        if due_at != self._last_due[0]:
            self._last_due = (due_at, stamp(due_at))
        rows.put(SUSPECT_TABLE.name, {
            "finding_id": key, "seq": seq, "rule": rule, "subject_kind": subject_kind, "subject_id": subject_id,
            "policy_ref": policy_ref, "due_at": self._last_due[1], "status": "pending", "discriminator": discriminator,
            "facts": dict(facts)})

    def _clear(self, key: str, rows: RowCache) -> None:
        row = rows.peek(SUSPECT_TABLE.name, key)
        if row is not None and row["status"] == "pending":
            rows.delete(SUSPECT_TABLE.name, key)

    def _finding_event(self, name: str, e: Any, position: int, rows: RowCache) -> None:
        key = str(e.originator_id)
        if name == "Finding.Raised":
            if self._batch.pending:
                self._settle(rows)  # it may be about one of them
            rows.put(FINDING_TABLE.name, {
                "finding_id": key, "seq": position * _SEQ_SLOTS, "rule": e.rule, "clause": e.clause,
                "subject_kind": e.subject_kind, "subject_id": e.subject_id, "policy_ref": e.policy_ref,
                "status": "open", "due_at": stamp(e.due_at), "raised_at": occurred_stamp(e),
                "raised_by_run": e.meta.get("request_id"), "facts": _json(e.facts), "acknowledged_by": None,
                "acknowledged_role": None, "acknowledged_at": None, "ack_reason": None,
                "version": e.originator_version})
            suspect = rows.peek(SUSPECT_TABLE.name, key)
            if suspect is not None:
                rows.put(SUSPECT_TABLE.name, {**suspect, "status": "raised"})
        elif name in _RECTIFICATION_STATUS:
            row = rows.peek(FINDING_TABLE.name, key)
            if row is None:
                raise LookupError(f"rm_finding has no row for {key}; its Raised event was not seen")
            rows.put(FINDING_TABLE.name, {**row, "status": _RECTIFICATION_STATUS[name], "version": e.originator_version})
        elif name == "Finding.Acknowledged":
            row = rows.peek(FINDING_TABLE.name, key)
            if row is None:
                raise LookupError(f"rm_finding has no row for {key}; its Raised event was not seen")
            rows.put(FINDING_TABLE.name, {**row, "status": "acknowledged", "acknowledged_by": e.meta["actor_id"],
                                          "acknowledged_role": e.meta["actor_role"],
                                          "acknowledged_at": occurred_stamp(e), "ack_reason": e.meta.get("reason"),
                                          "version": e.originator_version})
