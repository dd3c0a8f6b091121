"""The job registry: every scheduled compliance job, its default schedule, and why its misfire
grace time and coalescing are what they are.

A job is a function of a :class:`JobContext` (the ledger, the business time it runs "as of", its
run id) returning ``(counts, details)``; :func:`scheduler.runner.run_job` records the run as a
``JobRun``. To add a job, decorate a function with :func:`job` (or call :func:`register`); a
registration under an existing name replaces it.

Schedules: ``every 60s`` / ``every 15m`` / ``every 1h`` (interval, anchored at a fixed epoch so
every instance computes the same slots) or a five-field crontab, in the default policy's time
zone. Each can be overridden with ``CASELEDGER_SCHEDULE_<JOB>`` (``off`` disables it).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from contextlib import closing
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Callable

from domain.context import Context
from ledger.settings import Settings

JobResult = tuple[dict[str, int], dict[str, Any]]


@dataclass(frozen=True)
class JobContext:
    ledger: Any
    job: str
    as_of: datetime
    run_id: str
    settings: Settings

    def context(self) -> Context:
        """Who the job's own events are by: the scheduler, as the non-human ``service`` role."""
        return Context(actor_id="scheduler", actor_role="service", occurred_at=self.as_of,
                       request_id=f"job-run:{self.run_id}")

    @property
    def reports_dir(self) -> Path:
        return self.settings.reports_dir


@dataclass(frozen=True)
class JobSpec:
    name: str
    run: Callable[[JobContext], JobResult]
    schedule: str
    misfire_grace_time: int  # seconds a run may start late and still run (APScheduler's default, 1 s, would skip it)
    # Several missed runs: once (True) or once per missed slot (False). True for every job here: a run
    # works "as of" its own time and catches up on whatever earlier slots would have done.
    coalesce: bool
    summary: str
    why: str  # why this grace time and coalescing


REGISTRY: dict[str, JobSpec] = {}


def register(spec: JobSpec) -> JobSpec:
    REGISTRY[spec.name] = spec
    return spec


def job(name: str, *, schedule: str, misfire_grace_time: int, coalesce: bool, why: str) -> Callable:
    def decorate(fn: Callable[[JobContext], JobResult]) -> Callable[[JobContext], JobResult]:
        summary = (fn.__doc__ or name).strip().splitlines()[0]
        register(JobSpec(name, fn, schedule, misfire_grace_time, coalesce, summary, why))
        return fn
    return decorate


# -- the jobs ----------------------------------------------------------------------------------------
@job("sla_clocks", schedule="every 60s", misfire_grace_time=300, coalesce=True,
     why="Each run records everything due as of its own time, so ten missed runs are worth exactly one "
         "(coalesce); a run up to 5 minutes late is still worth doing, later the next slot comes first.")
def sla_clocks(jc: JobContext) -> JobResult:
    """Record SLA breaches and their escalations that are due (SLABreached, Escalated)."""
    from services.sla import SlaMonitor

    with closing(SlaMonitor(jc.ledger)) as monitor:
        return monitor.run(jc.context()), {}


@job("stalled_cases", schedule="every 1h", misfire_grace_time=3600, coalesce=True,
     why="Deadlines are working days long, so an hourly look is timely; each run settles everything due by "
         "its own time, so missed runs coalesce into one.")
def stalled_cases(jc: JobContext) -> JobResult:
    """Close cases whose customer stayed silent past the policy's deadline; archive closed cases left unarchived."""
    from services.stalled import StalledCases

    with closing(StalledCases(jc.ledger)) as stalled:
        return stalled.run(jc.context()), {}


@job("compliance_audit", schedule="every 15m", misfire_grace_time=900, coalesce=True,
     why="A run raises every finding due by its time, so missed runs coalesce into one; a grace of one "
         "interval keeps a late run rather than waiting for the next.")
def compliance_audit(jc: JobContext) -> JobResult:
    """Raise the compliance findings that are due; write the run's report (JSON and CSV)."""
    from services.compliance import ComplianceAudit

    with closing(ComplianceAudit(jc.ledger)) as audit:
        return audit.run(jc.context(), jc.reports_dir, jc.run_id)


@job("integrity", schedule="every 1h", misfire_grace_time=1800, coalesce=True,
     why="Incremental from the last verified head: one late run verifies everything the missed ones "
         "would have (coalesce), and still publishes a checkpoint within the half hour.")
def integrity(jc: JobContext) -> JobResult:
    """Verify the events added since the last verified tree head; publish a signed checkpoint if they verify."""
    from ledger.bootstrap import transparency_log
    from projections.job_runs import latest_result
    from services.log_audit import Verified, verify_incrementally

    log = transparency_log(jc.ledger, jc.settings)
    since = latest_result(jc.ledger, "integrity", Verified.from_details)
    details, verified = verify_incrementally(jc.ledger, log, since)
    counts = {"leaves_verified": int(details.get("leaves_verified", 0)),
              "checkpoints_checked": int(details.get("checkpoints_checked", 0)), "checkpoint_size": 0,
              "findings_raised": _raise_integrity_finding(jc, details)}
    if verified is not None:  # never sign a tree head that did not verify
        checkpoint, _ = log.publish_checkpoint(jc.as_of)
        counts["checkpoint_size"] = checkpoint.size
    return counts, details


def _raise_integrity_finding(jc: JobContext, details: dict[str, Any]) -> int:
    """A failed verification is a finding at once: the audit would find it from this run's events too,
    but a damaged log may stop the read models before they get there."""
    from domain.findings import integrity_suspicion
    from services.compliance import record_finding

    policy = jc.ledger.policies.in_force(jc.as_of, jc.ledger.policy_name)
    found = integrity_suspicion(details, jc.run_id, policy.ref, jc.as_of)
    return int(found is not None and record_finding(jc.ledger, found, jc.context()))


@job("integrity_full", schedule="15 3 * * *", misfire_grace_time=6 * 3600, coalesce=True,
     why="Re-hashes the whole log; one run covers any number of missed nights (coalesce), and a run "
         "started up to 6 hours late still finishes before the working day.")
def integrity_full(jc: JobContext) -> JobResult:
    """Verify the whole log (every event, every stored node, every checkpoint), naming the first problem."""
    from ledger.bootstrap import transparency_log
    from services.log_audit import verify_full

    details = verify_full(transparency_log(jc.ledger, jc.settings))
    return {"leaves_verified": int(details["leaves_verified"]), "checkpoints_checked": int(details["checkpoints_checked"]),
            "findings_raised": _raise_integrity_finding(jc, details)}, details


@job("kpi_report", schedule="30 0 * * *", misfire_grace_time=23 * 3600, coalesce=True,
     why="Each run reports every business day since the last reported one (at most a month), so missed "
         "nights coalesce into one run that catches up; a grace of almost a day keeps a late start.")
def kpi_report(jc: JobContext) -> JobResult:
    """Write the KPI report (JSON and CSV, per channel) of each day since the last one reported, up to yesterday."""
    from projections.job_runs import latest_result

    policy = jc.ledger.policies.in_force(jc.as_of, jc.ledger.policy_name)
    yesterday = jc.as_of.astimezone(policy.tz).date() - timedelta(days=1)
    last = latest_result(jc.ledger, "kpi_report", lambda d: (d.get("days") or [None])[-1])
    first = max(date.fromisoformat(last) + timedelta(days=1), yesterday - timedelta(days=MAX_KPI_DAYS - 1)) \
        if last else yesterday
    days = [first + timedelta(days=n) for n in range((yesterday - first).days + 1)]
    reports = {day.isoformat(): _kpi_day(jc, day) for day in days}
    return {"days": len(days)}, {"days": sorted(reports), "reports": reports}


MAX_KPI_DAYS = 31


def _kpi_day(jc: JobContext, day: date) -> dict[str, Any]:
    from projections.kpi_counters import KpiCounters
    from projections.kpis import dashboard
    from projections.runtime import ProjectionRunner

    runner = ProjectionRunner(jc.ledger, [KpiCounters(jc.ledger)])
    try:
        runner.ensure_tables()
        runner.catch_up()
        data = dashboard(runner.db, jc.ledger, day, day, "channel")
    finally:
        runner.close()
    rows = [{"group": g["group"], "kpi": k["key"], "value": k["value"], "numerator": k["numerator"],
             "denominator": k["denominator"], "target_op": (k["target"] or {}).get("op"),
             "target": (k["target"] or {}).get("value"), "met": (k["target"] or {}).get("met"),
             "clause": (k["target"] or {}).get("clause")} for g in data["groups"] for k in g["kpis"]]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=KPI_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    folder = jc.reports_dir / "kpi"
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"groups": len(data["groups"])}
    for suffix, body in (("json", json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True)),
                         ("csv", buffer.getvalue())):
        path = folder / f"{day.isoformat()}.{suffix}"
        path.write_text(body, encoding="utf-8")
        out[suffix] = str(path)
        out[f"{suffix}_sha256"] = hashlib.sha256(body.encode("utf-8")).hexdigest()
    return out


KPI_COLUMNS = ["group", "kpi", "value", "numerator", "denominator", "target_op", "target", "met", "clause"]


@job("retention_sweep", schedule="0 2 * * *", misfire_grace_time=12 * 3600, coalesce=True,
     why="Proposes dispositions that are due as of its time (never executes them) and is idempotent per "
         "subject and day: missed nights coalesce into one run, which may start up to 12 hours late.")
def retention_sweep(jc: JobContext) -> JobResult:
    """Propose dispositions for subjects past retention (never executes them); finish interrupted destructions."""
    from services.retention import build_retention as retention

    with closing(retention(jc.ledger, jc.settings)) as service:
        return {k: int(v) for k, v in service.sweep(jc.context()).items()}, {}


# -- periodic reviews (issue #20): one job per review kind (policy rule review.<kind>, its period and
# clause); each run issues the signed report of the last complete period (services.reviews).
REVIEW_SCHEDULES = {  # kind → crontab: early on the first day after the period, in the policy's zone
    "monthly_check": "0 1 1 * *", "quality_review": "0 2 1 1,4,7,10 *", "performance_quarterly": "15 2 1 1,4,7,10 *",
    "customer_information_audit": "30 2 1 1,4,7,10 *", "performance_annual": "0 3 1 1 *",
    "risk_assessment_input": "15 3 1 1 *",
}
REVIEW_WHY = ("The report's id is derived from its kind and period, so a rerun or a second instance finds it "
              "issued and does nothing (coalesce); a run up to 7 days late still reports the period just ended.")


def _review_job(kind: str) -> Callable[[JobContext], JobResult]:
    def run(jc: JobContext) -> JobResult:
        from services.reviews import run_review

        return run_review(jc.ledger, jc.settings, kind, None, jc.context())
    return run


for _kind, _schedule in REVIEW_SCHEDULES.items():
    register(JobSpec(f"review_{_kind}", _review_job(_kind), _schedule, 7 * 24 * 3600, True,
                     f"Issue the signed {_kind.replace('_', ' ')} report of the last complete period "
                     "(policy rule review.{_kind}).".replace("{_kind}", _kind), REVIEW_WHY))


@job("rectification_overdue", schedule="0 * * * *", misfire_grace_time=3600, coalesce=True,
     why="A run raises a finding for every rectification overdue at its time (ids derived from the finding and "
         "its due date), so missed runs coalesce into one; a grace of one interval keeps a late run.")
def rectification_overdue(jc: JobContext) -> JobResult:
    """Raise rectification_overdue for each finding not rectified by its owner's due date."""
    from services.rectification import RectificationWatch

    with closing(RectificationWatch(jc.ledger)) as watch:
        return watch.run(jc.context()), {}


@job("calendar_coverage", schedule="0 6 * * *", misfire_grace_time=23 * 3600, coalesce=True,
     why="Daily: the warning is due a fixed number of days before a year begins and its id is the year, so "
         "missed days coalesce into one run and reruns never duplicate it.")
def calendar_coverage(jc: JobContext) -> JobResult:
    """Raise calendar_data_missing before a year whose State Council holiday notice is not loaded begins."""
    from services.rectification import raise_calendar_gaps

    return raise_calendar_gaps(jc.ledger, jc.context()), {}
