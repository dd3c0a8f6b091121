"""``caseledger scheduler``, ``caseledger jobs …`` and ``caseledger findings …``."""

from __future__ import annotations

import json
import logging
import signal
import threading
from datetime import datetime, timezone
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from cli.context import open_ledger, settings
from cli.identity import acting
from cli.params import MOMENT
from domain.errors import DomainError
from ledger.errors import LedgerError
from ledger.structured_logs import configure as configure_logs

console = Console(stderr=True)


def _as_of(value: datetime | None) -> datetime:
    return value or datetime.now(timezone.utc)


@click.command()
def scheduler() -> None:
    """Run the scheduled compliance jobs (this process only; start it twice and one leads, one waits)."""
    from scheduler.process import SchedulerProcess, SchedulerSettings

    configure_logs("scheduler")  # JSON lines, with each run's job_run_id (ledger/structured_logs.py)
    logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)  # each run logs its own outcome
    try:
        schedule = SchedulerSettings.from_settings(settings())
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    ledger = open_ledger()
    try:
        SchedulerProcess(ledger, schedule, settings()).serve(stop)
    finally:
        ledger.close()


@click.group()
def jobs() -> None:
    """The scheduled compliance jobs: list them, run one now, see their history."""


@jobs.command("list")
def jobs_list() -> None:
    """Every job with its schedule (as configured), misfire grace time and coalescing."""
    from scheduler.jobs import REGISTRY
    from scheduler.process import SchedulerSettings

    try:
        schedules = SchedulerSettings.from_settings(settings()).schedules
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    table = Table("job", "schedule", "grace (s)", "coalesce", "what")
    for name, spec in sorted(REGISTRY.items()):
        table.add_row(name, schedules.get(name, "off"), str(spec.misfire_grace_time), str(spec.coalesce), spec.summary)
    Console().print(table)


@jobs.command("run")
@click.argument("name")
@click.option("--as-of", type=MOMENT, help="Business time to run as of (ISO 8601 with zone; default: now).")
def jobs_run(name: str, as_of: datetime | None) -> None:
    """Run one job now (administrators), recorded as a manual job run naming who ran it; prints the
    outcome as JSON."""
    from scheduler.runner import UnknownJob, run_job

    who = acting("jobs.run")
    ledger = who.ledger
    ctx = who.context()
    try:
        outcome = run_job(ledger, name, _as_of(as_of), trigger="manual", settings=settings(),
                          instance=f"cli {ctx.actor_id} ({ctx.os_user}@{ctx.host})")
    except UnknownJob as e:
        raise click.UsageError(str(e)) from None
    finally:
        ledger.close()
    click.echo(json.dumps(vars(outcome), ensure_ascii=False, indent=2, default=str))
    if outcome.status == "failed":
        raise SystemExit(1)


@jobs.command("history")
@click.option("--job", "job_name", help="Only runs of this job.")
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def jobs_history(job_name: str | None, limit: int, as_json: bool) -> None:
    """The latest job runs, newest first."""
    from projections.job_runs import JOB_RUN_TABLE

    rows = _read(lambda cur: cur.execute(
        f"SELECT {', '.join(JOB_RUN_TABLE.column_names)} FROM {JOB_RUN_TABLE.name}"
        + (" WHERE job = ?" if job_name else "") + " ORDER BY seq DESC LIMIT ?",
        ((job_name,) if job_name else ()) + (limit,)).fetchall(), JOB_RUN_TABLE.column_names)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    table = Table("as of", "job", "trigger", "status", "instance", "counts / reason")
    for r in rows:
        table.add_row(r["as_of"], r["job"], r["trigger_kind"], r["status"], r["instance"], r["reason"] or r["counts"])
    Console().print(table)


def _read(query: Any, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    from projections.catalog import runner_for

    ledger = acting("compliance.read").ledger  # job runs and findings: what compliance readers may see
    runner = runner_for(ledger)
    try:
        runner.catch_up(strict=False)  # a listing shows the last good state even if some read model is stalled
        with runner.db.reading() as cur:
            return [dict(zip(columns, row)) for row in query(cur)]
    finally:
        runner.close()
        ledger.close()


@click.group()
def findings() -> None:
    """Compliance findings: list them, acknowledge one (with a reason; findings are never deleted)."""


@findings.command("list")
@click.option("--rule", help="Only findings of this rule.")
@click.option("--status", type=click.Choice(["open", "acknowledged"]))
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def findings_list(rule: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """Findings in the order they were raised."""
    from projections.findings import FINDING_TABLE

    where = [(c, v) for c, v in (("rule", rule), ("status", status)) if v]
    sql = (f"SELECT {', '.join(FINDING_TABLE.column_names)} FROM {FINDING_TABLE.name}"
           + (" WHERE " + " AND ".join(f"{c} = ?" for c, _ in where) if where else "") + " ORDER BY seq LIMIT ?")
    rows = _read(lambda cur: cur.execute(sql, [v for _, v in where] + [limit]).fetchall(), FINDING_TABLE.column_names)
    if as_json:
        for row in rows:
            click.echo(json.dumps({**row, "facts": json.loads(row["facts"])}, ensure_ascii=False))
        return
    table = Table("finding", "rule", "clause", "subject", "status", "raised at")
    for r in rows:
        table.add_row(r["finding_id"], r["rule"], r["clause"], f"{r['subject_kind']} {r['subject_id']}", r["status"],
                      r["raised_at"])
    Console().print(table)


@findings.command("ack")
@click.argument("finding_id")
@click.option("--reason", required=True, help="Why the finding stands as it is (recorded on the event).")
def findings_ack(finding_id: str, reason: str) -> None:
    """Acknowledge a finding, as the holder of your token (roles allowed by the policy's audit.acknowledge)."""
    from services.compliance import ComplianceAudit

    who = acting("findings.acknowledge")
    ledger = who.ledger
    audit = ComplianceAudit(ledger)
    try:
        finding = audit.acknowledge(finding_id, who.context(reason))
    except (DomainError, LedgerError) as e:
        raise click.ClickException(str(e)) from None
    finally:
        audit.close()
        ledger.close()
    click.echo(json.dumps({"finding_id": str(finding.id), "status": finding.status, "version": finding.version}))


COMMANDS = (scheduler, jobs, findings)
