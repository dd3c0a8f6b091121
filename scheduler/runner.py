"""Running one job, recorded as a ``JobRun``: started, then finished with its counts or failed with the reason.

Used by the scheduler (trigger ``schedule``, run id derived from the slot, so one slot runs once
however many instances try) and by ``caseledger jobs run`` (trigger ``manual``, a fresh id).
A job that raises is recorded as failed with the exception as its reason — never lost, never a
crash of the scheduler.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping
from uuid import UUID, uuid4

from domain.context import Context
from domain.jobs import JobRun
from ledger.bootstrap import as_settings
from ledger.errors import ConcurrentUpdate
from ledger.keys import KeyMissing
from ledger.records import plain
from ledger.settings import Settings
from ledger.structured_logs import bind
from scheduler.jobs import REGISTRY, JobContext

log = logging.getLogger("caseledger.scheduler")
MAX_REASON = 2000


class UnknownJob(LookupError):
    def __init__(self, name: str):
        super().__init__(f"no job {name!r}; jobs are {', '.join(sorted(REGISTRY))}")


@dataclass(frozen=True)
class Outcome:
    run_id: str
    job: str
    status: str  # finished | failed | skipped (the slot was run already)
    counts: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None


def instance_name() -> str:
    """This process, as job runs name it: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def run_job(ledger: Any, name: str, as_of: datetime, *, run_id: UUID | None = None, trigger: str = "manual",
            settings: Settings | Mapping[str, str], instance: str | None = None) -> Outcome:
    run_id = run_id or uuid4()
    with bind(job_run_id=str(run_id)):  # every line logged during the run names it
        return _run_job(ledger, name, as_of, run_id, trigger, settings, instance)


def _run_job(ledger: Any, name: str, as_of: datetime, run_id: UUID, trigger: str,
             settings: Settings | Mapping[str, str], instance: str | None) -> Outcome:
    spec = REGISTRY.get(name)
    if spec is None:
        raise UnknownJob(name)
    jc = JobContext(ledger, name, as_of, str(run_id), as_settings(settings))
    ctx = jc.context()
    policy = ledger.policies.in_force(as_of, ledger.policy_name)
    run = JobRun.start(id=run_id, job=name, trigger=trigger, instance=instance or instance_name(), policy=policy,
                       ctx=ctx)
    try:
        ledger._save(run)
    except ConcurrentUpdate:
        log.info("job %s: run %s was started already (another instance has this slot); skipped", name, run_id)
        return Outcome(str(run_id), name, "skipped", reason="this run was started already")
    try:
        counts, details = spec.run(jc)
    except Exception as e:  # noqa: BLE001 - whatever a job raises is its recorded failure
        reason = f"{type(e).__name__}: {e}"[:MAX_REASON]
        if isinstance(e, KeyMissing):  # the setup, not the code: its message says what to do
            log.error("job %s failed: %s", name, e)
        else:
            log.exception("job %s failed", name)
        _end(ledger, run, lambda: run.fail(reason=reason, policy=policy, ctx=ctx))
        return Outcome(str(run_id), name, "failed", reason=reason)
    counts, details = {k: int(v) for k, v in counts.items()}, plain(details)
    _end(ledger, run, lambda: run.finish(counts=counts, details=details, policy=policy, ctx=ctx))
    log.info("job %s finished: %s", name, counts)
    return Outcome(str(run_id), name, "finished", counts, details)


def _end(ledger: Any, run: JobRun, command: Any) -> None:
    try:
        command()
        ledger._save(run)
    except ConcurrentUpdate:  # e.g. a new leader already recorded this run as abandoned
        log.warning("job run %s was ended by someone else meanwhile; its outcome is not recorded", run.id)


def abandon_orphans(ledger: Any, instance: str, now: datetime) -> int:
    """Record as failed every scheduled run another instance started and never ended (it died or lost
    leadership); called by a scheduler when it becomes the leader. Returns how many."""
    from projections.job_runs import JOB_RUN_TABLE, job_history

    with job_history(ledger) as cur:
        rows = cur.execute(f"SELECT run_id, instance FROM {JOB_RUN_TABLE.name} WHERE status = 'running' "
                           "AND trigger_kind = 'schedule' AND instance <> ?", (instance,)).fetchall()
    done = 0
    for run_id, owner in rows:
        run = ledger.get("job_run", run_id)
        if run.status != "running":
            continue
        ctx = Context("scheduler", "service", max(now, datetime.fromisoformat(run.last_occurred_at)),
                      f"abandon:{run_id}")
        _end(ledger, run, lambda: run.fail(reason=f"abandoned: scheduler instance {owner} stopped before "
                                                  f"finishing it (recorded by {instance})",
                                           policy=ledger.policy_of(run), ctx=ctx))
        done += 1
    return done
