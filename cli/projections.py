"""``caseledger projections run|rebuild|status`` and ``caseledger replay``."""

from __future__ import annotations

import json
import os
import signal
import threading
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from cli.context import open_ledger
from cli.identity import acting
from cli.params import MOMENT, REPLAY_POINT
from ledger.application import KINDS
from ledger.errors import LedgerError
from projections.catalog import NAMES, runner_for
from projections.runtime import ProjectionFailed
from ledger.structured_logs import configure as configure_logs
from services.replay import Point, Replay

console = Console(stderr=True)


@click.group()
def projections() -> None:
    """Read models derived from the event log (case lists, KPI counters, SLA clocks, retention, findings…)."""


@projections.command()
@click.option("--batch-size", default=500, show_default=True, help="Notifications per transaction.")
@click.option("--poll", "poll_seconds", default=1.0, show_default=True,
              help="Seconds between polls on SQLite (PostgreSQL wakes on NOTIFY, at the latest after this).")
@click.option("--pause-between-batches", default=0.0, hidden=True,
              help="Fault drills only: slow the runner down so it can be killed mid-way.")
def run(batch_size: int, poll_seconds: float, pause_between_batches: float) -> None:
    """Follow the log and keep every read model up to date until interrupted (Ctrl-C / SIGTERM).

    A read model that cannot apply an event stalls there alone (shown here, in 'status', in
    /metrics and /readyz); this process keeps the others going, so it never exits because of an event."""
    configure_logs("projections")  # JSON lines, like every process (ledger/structured_logs.py)
    ledger = open_ledger()
    runner = runner_for(ledger, batch_size=batch_size)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    runner.on_stall = lambda stall: console.print(f"[red]read model {stall.name} {escape(stall.describe())}[/]; "
                                                  f"the others go on. Repair: fix the cause, then "
                                                  f"'caseledger projections rebuild {stall.name}'")
    console.print(f"following the log from positions {runner.positions()}")
    for stall in runner.stalls().values():
        console.print(f"[red]read model {stall.name} is {escape(stall.describe())}[/]: skipped until rebuilt")
    try:
        runner.follow(stop, poll_seconds=poll_seconds, pause_between_batches=pause_between_batches)
    except ProjectionFailed as e:
        raise click.ClickException(str(e)) from None
    finally:
        console.print("stopped at " + ", ".join(f"{s.name}={s.position}" for s in runner.status()))
        runner.close()
        ledger.close()


@projections.command()
@click.argument("name", required=False, type=click.Choice(NAMES))
@click.option("--batch-size", default=5000, show_default=True,
              help="Notifications read at a time (the rows are written every 50,000: projections.rebuilding; "
                   "bigger batches: fewer reads, more memory).")
@click.option("--workers", default=os.cpu_count() or 1, show_default="the cores",
              help="Processes to rebuild all read models in, each projecting a share of them (1: this one).")
def rebuild(name: str | None, batch_size: int, workers: int) -> None:
    """Drop a read model (default: all) and rebuild it from position 0.

    This is also the repair of a stalled read model, once the code is fixed: the stall is cleared
    with the tables, and the rebuild fails again (exit 1, naming the event) if the fix did not fix it."""
    ledger = open_ledger()
    runner = runner_for(ledger, batch_size=batch_size)
    head = ledger.recorder.max_notification_id() or 0
    columns = (TextColumn("rebuilding {task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(name or "all read models", total=head)
            runner.rebuild([name] if name else None, progress=lambda n: progress.advance(task, n), workers=workers)
    except ProjectionFailed as e:
        raise click.ClickException(str(e)) from None
    _print_status(runner)
    runner.close()


@projections.command()
@click.option("--digest/--no-digest", default=True, show_default=True,
              help="Also compute each read model's content digest (reads every row).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per read model, one a line.")
def status(digest: bool, as_json: bool) -> None:
    """Each read model's position, lag behind the head of the log, state (running, or stalled at an
    event with the reason) and content digest.

    The digest (SHA-256 of the rows in canonical order, projections/README.md) is a function of the
    events applied alone: compare it before and after 'caseledger projections rebuild NAME' (at the
    same position) to check that a rebuild equals the incremental result."""
    ledger = open_ledger()
    runner = runner_for(ledger)
    try:
        _print_status(runner, digest=digest, as_json=as_json)
    finally:
        runner.close()
        ledger.close()


def _print_status(runner: Any, *, digest: bool = True, as_json: bool = False) -> None:
    statuses = runner.status()
    digests = runner.digests() if digest else {}
    if as_json:
        for s in statuses:
            click.echo(json.dumps({"read_model": s.name, "position": s.position, "head": s.head, "lag": s.lag,
                                   "state": s.state, "stall": None if s.stall is None else {
                                       "position": s.stall.position, "topic": s.stall.topic,
                                       "reason": s.stall.reason, "stalled_at": s.stall.stalled_at},
                                   "digest": digests.get(s.name)}, ensure_ascii=False))
        return
    table = Table("read model", "position", "head", "lag", "state", *(("digest",) if digest else ()))
    for s in statuses:
        state = "running" if s.stall is None else f"[red]{escape(s.stall.describe())}[/]"
        table.add_row(s.name, str(s.position), str(s.head), str(s.lag), state,
                      *((digests[s.name],) if digest else ()))
    Console().print(table)
    for s in statuses:
        if s.stall is not None:
            console.print(f"repair {s.name}: fix the cause, then 'caseledger projections rebuild {s.name}'")


@click.command()
@click.argument("kind", type=click.Choice(sorted(KINDS)))
@click.argument("aggregate_id")
@click.option("--as-of", type=MOMENT, help="Business time (ISO 8601 with zone): show the state as it was then.")
@click.option("--position", type=int, help="Log position: show the state as the ledger knew it then.")
@click.option("--diff-from", type=REPLAY_POINT,
              help="With --as-of/--position: also show what changed since this point (a time or a log position).")
def replay(kind: str, aggregate_id: str, as_of: datetime | None, position: int | None,
           diff_from: Point | None) -> None:
    """Replay a case from its events: the timeline, or its state AS OF a time or log position."""
    ledger = acting("replay.read").ledger  # an auditor's read, as the token holder (no personal values)
    auditor = Replay(ledger)
    try:
        if as_of is None and position is None:
            table = Table("pos", "occurred at", "kind", "type", "v", "actor", "role", "policy")
            for item in auditor.timeline(kind, aggregate_id):
                table.add_row(str(item["position"]), item["occurred_at"], item["kind"], item["type"],
                              str(item["version"]), item["actor_id"], item["actor_role"], item["policy"])
            Console().print(table)
            return
        point = Point(position=position) if position is not None else Point(as_of=as_of)
        if diff_from:
            result: dict[str, Any] = auditor.diff(kind, aggregate_id, diff_from, point)
        else:
            result = auditor.state(kind, aggregate_id, point)
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
    except LedgerError as e:
        raise click.ClickException(e.message) from None
    finally:
        auditor.db.close()
        ledger.close()
