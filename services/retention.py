"""Retention use cases: legal holds, the retention report, and disposition by crypto-shredding.

Reading goes through the retention read model (``projections.retention``), caught up to the head
of the log first, so an assessment sees every record and hold written before it. Every
decision — may this be held, proposed, approved, executed — is the domain's
(``domain.holds``, ``domain.disposition``); this module gathers the facts and saves the result.

Execution order, and why: the destruction certificate is saved first, then the subject's data
key is destroyed. A crash in between leaves a certificate whose key still exists;
:meth:`Retention.complete_pending` (run by ``caseledger retention execute`` and the retention
sweep) finishes it. The reverse order could destroy data without a certificate.

Due dates and holds are checked on the wall clock (``clock``: ``build_retention`` gives the
ledger's), never on the command's business time: that is what the caller says, and dating a step
later must not make data due (the ledger's own check lets business time run ahead by the allowed
skew). The dry-run report takes any date.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Mapping
from uuid import UUID, uuid4, uuid5

from domain.context import Context
from domain.disposition import Disposition
from domain.errors import TransitionForbidden
from domain.holds import LegalHold
from domain.retention import Assessment, RecordDue, assess
from ledger.application import ID_NAMESPACE, CaseLedger, wall_clock
from ledger.bootstrap import transparency_log
from ledger.errors import ConcurrentUpdate, NotFound
from ledger.settings import Settings
from projections.retention import DESTROYED_TABLE, DISPOSITION_TABLE, HOLD_TABLE, RECORD_TABLE, RetentionRecords
from projections.runtime import ProjectionRunner
from projections.timeutil import parse, stamp


class Retention:
    def __init__(self, ledger: CaseLedger, tree_size: Any = None, clock: Callable[[], datetime] = wall_clock):
        """``tree_size``: a callable giving the transparency log's size (for certificates); ``clock``:
        the wall clock the steps assess due dates and holds on."""
        self.ledger = ledger
        self.clock = clock
        self.runner = ProjectionRunner(ledger, [RetentionRecords(ledger)])
        self.runner.ensure_tables()
        self.tree_size = tree_size or (lambda: ledger.recorder.max_notification_id() or 0)

    def close(self) -> None:
        self.runner.close()

    # -- reading ---------------------------------------------------------------------------
    def catch_up(self) -> None:
        self.runner.catch_up()

    def records(self, *, subject: str | None = None, due_before: datetime | None = None,
                limit: int = 1000, fresh: bool = True, after: int = 0) -> list[dict[str, Any]]:
        """Records with their class, trigger, due date and hold status (read model rows), in ``seq``
        order after ``after`` (a page: the API's cursor carries the last ``seq``).
        ``fresh=False``: the caller has just caught up (one catch-up per use case, not per query)."""
        if fresh:
            self.catch_up()
        where, params = ["r.seq > ?"], [after]
        if subject is not None:
            where.append("r.subject = ?")
            params.append(subject)
        if due_before is not None:
            where.append("r.due_at IS NOT NULL AND r.due_at <= ?")
            params.append(stamp(due_before))
        sql = (f"SELECT r.{', r.'.join(RECORD_TABLE.column_names)}, d.destroyed_at FROM {RECORD_TABLE.name} r "
               f"LEFT JOIN {DESTROYED_TABLE.name} d ON d.subject = r.subject"
               + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY r.seq LIMIT ?")
        holds = self._active_holds()
        with self.runner.db.reading() as cur:
            rows = cur.execute(sql, (*params, limit)).fetchall()
        out = []
        for values in rows:
            row = dict(zip((*RECORD_TABLE.column_names, "destroyed_at"), values))
            row["held_by"] = sorted(h["hold_id"] for h in holds if _covers(h, row))
            out.append(row)
        return out

    def holds(self, *, subject: str | None = None, active_only: bool = False,
              fresh: bool = True, after: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """Holds in ``seq`` order after ``after``; at most ``limit`` (None: all)."""
        if fresh:
            self.catch_up()
        sql = f"SELECT {', '.join(HOLD_TABLE.column_names)} FROM {HOLD_TABLE.name}"
        clauses, params = ["seq > ?"], [after]
        if subject is not None:
            clauses.append("subject = ?")
            params.append(subject)
        if active_only:
            clauses.append("status = 'active'")
        sql += (" WHERE " + " AND ".join(clauses) if clauses else "") + " ORDER BY seq"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self.runner.db.reading() as cur:
            return [dict(zip(HOLD_TABLE.column_names, r)) for r in cur.execute(sql, params).fetchall()]

    def destroyed(self) -> list[dict[str, Any]]:
        self.catch_up()
        with self.runner.db.reading() as cur:
            rows = cur.execute(f"SELECT {', '.join(DESTROYED_TABLE.column_names)} FROM {DESTROYED_TABLE.name} "
                               "ORDER BY destroyed_at, subject").fetchall()
        return [dict(zip(DESTROYED_TABLE.column_names, r)) for r in rows]

    def assess(self, subject: str, as_of: datetime, *, fresh: bool = True) -> Assessment:
        if fresh:
            self.catch_up()
        rows = self.records(subject=subject, limit=100_000, fresh=False)
        subject_holds = {h["hold_id"] for h in self._active_holds()
                         if h["target_kind"] == "customer" and h["subject"] == subject}
        records = [RecordDue(kind=r["kind"], record_id=r["record_id"], record_class=r["record_class"],
                             clause=r["clause"] or "", due_at=parse(r["due_at"]) if r["due_at"] else None,
                             held_by=tuple(h for h in r["held_by"] if h not in subject_holds))
                   for r in rows if r["record_class"] is not None]
        return assess(subject, records, subject_holds, as_of)

    def report(self, as_of: datetime) -> list[dict[str, Any]]:
        """Dry run: every subject not yet destroyed with at least one due record, and whether (and why not)
        their personal data would be destroyed at ``as_of``."""
        self.catch_up()
        with self.runner.db.reading() as cur:
            subjects = [r[0] for r in cur.execute(
                f"SELECT DISTINCT r.subject FROM {RECORD_TABLE.name} r LEFT JOIN {DESTROYED_TABLE.name} d "
                "ON d.subject = r.subject WHERE d.subject IS NULL AND r.due_at IS NOT NULL AND r.due_at <= ? "
                "ORDER BY r.subject", (stamp(as_of),)).fetchall()]
        report = []
        for subject in subjects:
            a = self.assess(subject, as_of, fresh=False)
            report.append({"subject": subject, "disposable": a.disposable, "blockers": list(a.blockers),
                           "records": [r.describe() for r in a.records]})
        return report

    # -- legal holds -------------------------------------------------------------------------
    def place_hold(self, ctx: Context, *, target_kind: str, target_id: str, authority: str) -> LegalHold:
        if target_kind == "customer":
            subject = str(self.ledger.get("customer", target_id).id)
        elif target_kind in ("ticket", "complaint"):
            subject = self.ledger.get(target_kind, target_id).customer_id
        else:
            subject = str(target_id)  # the domain refuses it with its rule
        hold = LegalHold.place(id=uuid4(), target_kind=target_kind, target_id=str(target_id), subject=subject,
                               authority=authority, policy=self.ledger.policy_for_new_case(ctx), ctx=ctx)
        self.ledger._save(hold)
        return hold

    def release_hold(self, ctx: Context, hold_id: str) -> LegalHold:
        return self._change("hold", hold_id, lambda hold, policy: hold.release(policy=policy, ctx=ctx))

    # -- disposition ---------------------------------------------------------------------------
    def propose(self, ctx: Context, subject: str, *, disposition_id: UUID | None = None) -> Disposition:
        assessment = self.assess(str(subject), self.clock())
        disposition = Disposition.propose(id=disposition_id or uuid4(), assessment=assessment,
                                          policy=self.ledger.policy_for_new_case(ctx), ctx=ctx)
        self.ledger._save(disposition)
        return disposition

    def approve(self, ctx: Context, disposition_id: str) -> Disposition:
        def approve(d: Disposition, policy: Any) -> None:
            d.approve(assessment=self.assess(d.subject, self.clock()), policy=policy, ctx=ctx)
            # After the four-eyes rule (inside approve), so a self-approval is named as such; raising
            # here still saves nothing, the approval being only pending on the aggregate.
            self._require_appraisal(d.subject, ctx)
        return self._change("disposition", disposition_id, approve)

    def _require_appraisal(self, subject: str, ctx: Context) -> None:
        """Records whose class says ``action = "review"`` (archives, 003 §2.4.1) are appraised before
        destruction: approving their disposition is that appraisal, so it needs the approver's written
        reason (recorded with the approval), naming the classes appraised."""
        classes = {(r["policy_ref"], r["record_class"]) for r in self.records(subject=subject, limit=100_000)
                   if r["record_class"] and r["policy_ref"]}  # each class looked up once, not once per record
        appraised = [(name, self.ledger.policies.get(ref).record_class(name)) for ref, name in classes]
        needing = sorted({(name, cls.source) for name, cls in appraised if cls.action == "review"})
        if needing and not (ctx.reason and ctx.reason.strip()):
            raise TransitionForbidden("records of class " + ", ".join(k for k, _ in needing) + " are appraised before "
                              "destruction: approve with the appraisal as the reason",
                              rule="retention.appraisal_required", clause="; ".join(sorted({c for _, c in needing})))

    def reject(self, ctx: Context, disposition_id: str) -> Disposition:
        return self._change("disposition", disposition_id, lambda d, policy: d.reject(policy=policy, ctx=ctx))

    def _change(self, kind: str, aggregate_id: str, command: Any) -> Any:
        """Load, let the domain decide (``command(aggregate, policy)``), save."""
        aggregate = self.ledger.get(kind, aggregate_id)
        command(aggregate, self.ledger.policy_of(aggregate))
        self.ledger._save(aggregate)
        return aggregate

    def execute(self, ctx: Context, disposition_id: str) -> Disposition:
        """Certify, then destroy the subject's data key (see the module docstring for the order)."""
        disposition = self.ledger.get("disposition", disposition_id)
        keys = self.ledger.subject_keys
        fingerprint = keys.fingerprint(disposition.subject) if keys is not None else None
        disposition.certify_destruction(assessment=self.assess(disposition.subject, self.clock()),
                                        key_fingerprint=fingerprint or "none", tree_size=int(self.tree_size()),
                                        policy=self.ledger.policy_of(disposition), ctx=ctx)
        self.ledger._save(disposition)
        self._destroy(disposition)
        return disposition

    def sweep(self, ctx: Context) -> dict[str, int]:
        """The scheduled retention sweep: propose (never execute) a disposition for every subject that is
        disposable now (the wall clock), at most one per subject and (business) day however often it
        runs; and finish destructions a crash interrupted."""
        proposed = existing = 0
        for row in self.report(self.clock()):
            if not row["disposable"]:
                continue
            disposition_id = disposition_id_for(row["subject"], ctx.occurred_at)
            if self.ledger.exists("disposition", disposition_id) or self._pending_for(row["subject"]):
                existing += 1
                continue
            try:
                self.propose(ctx, row["subject"], disposition_id=disposition_id)
                proposed += 1
            except ConcurrentUpdate:  # another sweep proposed it at the same moment
                existing += 1
        completed = self.complete_pending()
        if self.ledger.subject_keys is not None and self.destroyed():
            self.ledger.subject_keys.compact()  # again: an open transaction may have delayed the last one
        return {"proposed": proposed, "already_proposed": existing, "completed": completed}

    def _pending_for(self, subject: str) -> bool:
        """Is a disposition of this subject already waiting for approval or execution?"""
        with self.runner.db.reading() as cur:
            rows = cur.execute(f"SELECT status FROM {DISPOSITION_TABLE.name} WHERE subject = ?", (subject,)).fetchall()
        return any(status in ("proposed", "approved") for (status,) in rows)

    def complete_pending(self) -> int:
        """Destroy keys of certified dispositions whose key survived a crash; returns how many."""
        done = 0
        for row in self.destroyed():
            keys = self.ledger.subject_keys
            if keys is not None and not keys.is_destroyed(row["subject"]):
                self._destroy(self.ledger.get("disposition", row["disposition_id"]))
                done += 1
        return done

    def _destroy(self, disposition: Disposition) -> None:
        if self.ledger.subject_keys is not None:
            self.ledger.subject_keys.destroy(disposition.subject, disposition_id=str(disposition.id),
                                             destroyed_at=disposition.certificate["destroyed_at"])

    def _active_holds(self) -> list[dict[str, Any]]:
        return self.holds(active_only=True, fresh=False)


def _covers(hold: dict[str, Any], record: dict[str, Any]) -> bool:
    if hold["target_kind"] == "customer":
        return hold["subject"] == record["subject"]
    return hold["target_kind"] == record["kind"] and hold["target_id"] == record["record_id"]


def disposition_id_for(subject: str, as_of: datetime) -> UUID:
    """Deterministic id for sweep-made proposals: one proposal per subject and day, however often it runs."""
    return uuid5(ID_NAMESPACE, f"disposition:{subject}:{as_of.date().isoformat()}")


__all__ = ["Retention", "disposition_id_for", "NotFound"]


def build_retention(ledger: CaseLedger, settings: Settings | Mapping[str, str]) -> Retention:
    """Retention, holds and disposition for the ledger; certificates carry the transparency log's size.
    Steps read the ledger's wall clock (late-bound: the one the ledger's business-time rule reads)."""
    return Retention(ledger, tree_size=transparency_log(ledger, settings).size, clock=lambda: ledger.clock())
