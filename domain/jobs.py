"""Job runs (作业记录): every run of a scheduled compliance job is an aggregate of its own.

Started → finished (with counts and details) or failed (with the reason), so job history is as
auditable as the cases the jobs look at: who ran what, for which business time (``occurred_at``
is the time the job evaluated "as of"), on which scheduler instance, with which outcome.

A scheduled run's id is derived from the job and its scheduled time (:meth:`JobRun.scheduled_id`),
so two scheduler instances that both believe they should run the same slot cannot both record
it: the second ``Started`` conflicts and that instance skips the run.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import event

from domain.case import Case
from domain.context import Context
from domain.errors import InvalidValue, require
from domain.policy import Policy

JOB_NAMESPACE = UUID("9ff8b0cc-316a-4a72-956d-2ecfe69c2401")
TRIGGERS = frozenset({"schedule", "manual"})


class JobRunStatus:
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"


S = JobRunStatus


class JobRun(Case):
    @event("Started")
    def __init__(self, id: UUID, job: str, trigger: str, instance: str, policy_ref: str, meta: dict[str, Any]):
        self.job = job
        self.trigger = trigger
        self.instance = instance
        self.policy_ref = policy_ref
        self.status = S.RUNNING
        self.counts: dict[str, int] = {}
        self.reason: str | None = None

    @staticmethod
    def scheduled_id(job: str, slot: datetime) -> UUID:
        return uuid5(JOB_NAMESPACE, f"job-run:{job}:{slot.astimezone(timezone.utc).isoformat()}")

    @classmethod
    def start(cls, *, id: UUID, job: str, trigger: str, instance: str, policy: Policy, ctx: Context) -> JobRun:
        if not job:
            raise InvalidValue("a job run names its job", rule="job.name")
        if trigger not in TRIGGERS:
            raise InvalidValue(f"trigger must be one of {', '.join(sorted(TRIGGERS))}", rule="job.trigger")
        return cls(id=id, job=job, trigger=trigger, instance=instance, policy_ref=policy.ref, meta=ctx.meta(policy.ref))

    def finish(self, *, counts: dict[str, int], details: dict[str, Any], policy: Policy, ctx: Context) -> None:
        self._governed_by(policy)
        self._require_status({S.RUNNING}, "finish", rule="job.finish_once")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in counts.values()):
            raise InvalidValue("job counts are whole numbers", rule="job.counts")
        self._finished(dict(counts), dict(details), self._meta(ctx))

    @event("Finished")
    def _finished(self, counts: dict[str, int], details: dict[str, Any], meta: dict[str, Any]) -> None:
        self.counts = counts
        self.status = S.FINISHED

    def fail(self, *, reason: str, policy: Policy, ctx: Context) -> None:
        self._governed_by(policy)
        self._require_status({S.RUNNING}, "fail", rule="job.fail_once")
        require(bool(reason), "a failed job run needs its reason", rule="job.fail_reason")
        self._failed(reason, self._meta(ctx))

    @event("Failed")
    def _failed(self, reason: str, meta: dict[str, Any]) -> None:
        self.reason = reason
        self.status = S.FAILED
