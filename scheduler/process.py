"""``caseledger scheduler``: the compliance jobs' own process — never inside an API worker.

Start as many as you like against one database: each waits for the leader lock
(:mod:`scheduler.leader`); the holder runs an APScheduler 3 ``BackgroundScheduler`` with every
job of the registry (stable job ids, ``replace_existing``, the job's own ``misfire_grace_time``
and ``coalesce``, one instance at a time), checks it still holds the lock, and stops scheduling
the moment it does not. Followers retry and take over within one retry interval.

Each firing runs the job "as of" its *slot* — the trigger's latest fire time at or before now —
with a run id derived from job and slot (:meth:`domain.jobs.JobRun.scheduled_id`): even two
leaders at once (a stalled one that has not noticed yet) cannot run one slot twice. On taking
over, the leader fails the runs its predecessor left unfinished (``abandoned``) and gives every
job its latest slot as first run time, so a slot the dead leader missed still runs if it is
within the job's grace time.

Environment (all optional): ``CASELEDGER_SCHEDULER_JOBS`` (comma-separated names, default all),
``CASELEDGER_SCHEDULE_<JOB>`` (``every 30s`` / ``every 5m`` / ``every 1h`` / crontab / ``off``),
``CASELEDGER_SCHEDULER_RETRY_SECONDS`` (follower retry, default 5), ``CASELEDGER_SCHEDULER_CHECK_SECONDS``
(leader lock check, default 5), ``CASELEDGER_SCHEDULER_WORKERS`` (jobs running at once, default 2).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from domain.jobs import JobRun
from ledger.settings import SCHEDULE_PREFIX, Settings, SettingsError
from scheduler.jobs import REGISTRY
from scheduler.leader import LeaderLock, leader_lock
from scheduler.runner import abandon_orphans, instance_name, run_job

log = logging.getLogger("caseledger.scheduler")
#: Interval schedules count from here, so every instance computes the same slots.
EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)
_EVERY = re.compile(r"every\s+(\d+)\s*([smh])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
#: How far back to look for a crontab's latest fire time.
_CRON_LOOKBACK = timedelta(days=8)


@dataclass(frozen=True)
class SchedulerSettings:
    schedules: dict[str, str]  # job -> schedule, enabled jobs only
    retry_seconds: float
    check_seconds: float
    workers: int

    @classmethod
    def from_settings(cls, settings: Settings) -> SchedulerSettings:
        """The scheduler's part of the settings, checked against the jobs there are."""
        jobs = ", ".join(sorted(REGISTRY))
        unknown = set(settings.scheduler_jobs) - set(REGISTRY)
        if unknown:
            raise SettingsError(f"CASELEDGER_SCHEDULER_JOBS: unknown job(s) {', '.join(sorted(unknown))}; "
                                f"jobs are {jobs}")
        strays = set(settings.schedules) - set(REGISTRY)
        if strays:
            raise SettingsError(f"{SCHEDULE_PREFIX}{sorted(strays)[0].upper()}: no such job; jobs are {jobs}")
        schedules = {}
        for name in settings.scheduler_jobs or sorted(REGISTRY):
            schedule = settings.schedules.get(name) or REGISTRY[name].schedule
            if schedule.strip().lower() != "off":
                schedules[name] = schedule
        return cls(schedules, settings.scheduler_retry_seconds, settings.scheduler_check_seconds,
                   settings.scheduler_workers)


def make_trigger(schedule: str, tz: Any) -> BaseTrigger:
    match = _EVERY.fullmatch(schedule.strip().lower())
    if match:
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        return IntervalTrigger(seconds=seconds, start_date=EPOCH, timezone=timezone.utc)
    try:
        return CronTrigger.from_crontab(schedule, timezone=tz)
    except ValueError as e:
        raise ValueError(f"schedule {schedule!r} is neither 'every N[s|m|h]' nor a crontab: {e}") from None


def latest_slot(trigger: BaseTrigger, now: datetime) -> datetime | None:
    """The trigger's latest fire time at or before ``now`` (None if it has never fired)."""
    if isinstance(trigger, IntervalTrigger):
        upcoming = trigger.get_next_fire_time(None, now)
        slot = upcoming if upcoming <= now else upcoming - trigger.interval
        return slot if slot >= EPOCH else None
    slot, moment = None, trigger.get_next_fire_time(None, now - _CRON_LOOKBACK)
    while moment is not None and moment <= now:
        slot, moment = moment, trigger.get_next_fire_time(moment, moment + timedelta(microseconds=1))
    return slot


class SchedulerProcess:
    def __init__(self, ledger: Any, settings: SchedulerSettings, ledger_settings: Settings,
                 lock: LeaderLock | None = None):
        self.ledger = ledger
        self.settings = settings
        self.ledger_settings = ledger_settings
        self.lock = lock or leader_lock(ledger)
        self.instance = instance_name()
        self.tz = ledger.policies.versions(ledger.policy_name)[-1].tz

    def fire(self, name: str, trigger: BaseTrigger) -> None:
        """One firing: run the job as of its slot, under the slot's run id."""
        slot = latest_slot(trigger, datetime.now(timezone.utc))
        if slot is None:
            return
        run_job(self.ledger, name, slot, run_id=JobRun.scheduled_id(name, slot), trigger="schedule",
                settings=self.ledger_settings, instance=self.instance)

    def serve(self, stop: threading.Event) -> None:
        """Follow until leader, lead until the lock is lost or ``stop`` is set; repeat until stopped."""
        log.info("scheduler %s: jobs %s; waiting for the %s", self.instance, self.settings.schedules,
                 self.lock.description)
        while not stop.is_set():
            if not self.lock.try_acquire():
                stop.wait(self.settings.retry_seconds)
                continue
            log.info("scheduler %s is the leader", self.instance)
            try:
                self._lead(stop)
            except Exception:  # noqa: BLE001 - e.g. the database went away: step down, follow, retry
                log.exception("scheduler %s cannot lead", self.instance)
                stop.wait(self.settings.retry_seconds)
            finally:
                self.lock.release()
            log.info("scheduler %s stopped leading", self.instance)

    def _lead(self, stop: threading.Event) -> None:
        now = datetime.now(timezone.utc)
        abandoned = abandon_orphans(self.ledger, self.instance, now)
        if abandoned:
            log.warning("recorded %d unfinished run(s) of the previous leader as abandoned", abandoned)
        scheduler = BackgroundScheduler(timezone=self.tz,
                                        executors={"default": ThreadPoolExecutor(self.settings.workers)})
        for name, schedule in self.settings.schedules.items():
            spec, trigger = REGISTRY[name], make_trigger(schedule, self.tz)
            first = latest_slot(trigger, now)  # a slot the previous leader may have missed
            extra = {"next_run_time": first} if first is not None else {}
            scheduler.add_job(self.fire, trigger, args=(name, trigger), id=name, name=spec.summary,
                              replace_existing=True, misfire_grace_time=spec.misfire_grace_time,
                              coalesce=spec.coalesce, max_instances=1, **extra)
        scheduler.start()
        try:
            while not stop.is_set() and self.lock.still_held():
                stop.wait(self.settings.check_seconds)
        finally:
            scheduler.shutdown(wait=True)  # a running job finishes and records its outcome
