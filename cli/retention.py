"""``caseledger retention`` and ``caseledger holds``: the records manager's and compliance officer's tools.

Every command acts as the holder of a token (``cli.identity``): the actor and role on each event
come from the token, the role must hold the step in the permission matrix, and business time is
the wall clock (the retention service checks due dates and holds against the wall clock too).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Callable

import click
from rich.console import Console
from rich.table import Table

from cli.context import settings
from cli.errors import OneLineError
from cli.identity import acting
from cli.params import MOMENT
from domain.errors import DomainError
from ledger.errors import NotFound
from services.retention import Retention, build_retention

console = Console(stderr=True)


def _moment(value: datetime | None) -> datetime:
    return value or datetime.now(timezone.utc)


def _run(action: Callable[[Retention], Any], permission: str = "retention.read") -> Any:
    who = acting(permission)
    service = build_retention(who.ledger, settings())
    try:
        return action(service) if permission == "retention.read" else action(service, who)
    except (DomainError, NotFound) as e:
        rule = f" (rule {e.rule})" if getattr(e, "rule", None) else ""
        raise OneLineError(f"refused: {e}{rule}") from None
    finally:
        service.close()


def _reason_option(command: Callable) -> Callable:
    return click.option("--reason", help="Why (required for holds and rejections; recorded on the event).")(command)


@click.group()
def retention() -> None:
    """Retention schedule, dry-run report and disposition (propose → approve → execute)."""


@retention.command("report")
@click.option("--as-of", "as_of", type=MOMENT, help="Time to assess at, ISO 8601 with a time zone (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def report(as_of: datetime | None, as_json: bool) -> None:
    """Dry run: whose personal data would be destroyed at AS_OF, and why not for the others."""
    rows = _run(lambda r: r.report(_moment(as_of)))
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table("subject", "would be destroyed", "records", "why not")
    for row in rows:
        table.add_row(row["subject"], "yes" if row["disposable"] else "no", str(len(row["records"])),
                      "\n".join(row["blockers"]) or "-")
    Console().print(table)
    console.print(f"{sum(r['disposable'] for r in rows)} of {len(rows)} subjects with due records are disposable")


@retention.command("records")
@click.option("--subject", help="Only this data subject (customer id).")
def records(subject: str | None) -> None:
    """Every record with its class, trigger, due date and holds."""
    rows = _run(lambda r: r.records(subject=subject))
    table = Table("kind", "id", "class", "trigger", "due", "held by", "destroyed")
    for row in rows:
        table.add_row(row["kind"], row["record_id"], row["record_class"] or "-", row["trigger_milestone"] or "-",
                      row["due_at"] or "-", ", ".join(row["held_by"]) or "-", row["destroyed_at"] or "-")
    Console().print(table)


@retention.command("propose")
@click.argument("subject")
@_reason_option
def propose(subject: str, reason: str | None) -> None:
    """Propose destroying SUBJECT's personal data (records manager)."""
    d = _run(lambda r, who: r.propose(who.context(reason), subject), "dispositions.propose")
    click.echo(str(d.id))


def _disposition_step(step: str, help_text: str) -> None:
    @retention.command(step, help=help_text)
    @click.argument("disposition_id")
    @_reason_option
    def command(disposition_id: str, reason: str | None) -> None:
        d = _run(lambda r, who: getattr(r, step)(who.context(reason), disposition_id), f"dispositions.{step}")
        click.echo(json.dumps(d.certificate, ensure_ascii=False, indent=2) if step == "execute" else f"{d.id} {d.status}")


_disposition_step("approve", "Approve a proposed disposition (compliance officer; not the proposer).")
_disposition_step("reject", "Reject a disposition, with a reason.")
_disposition_step("execute", "Execute an approved disposition: certify, then destroy the subject's data key.")


@click.group()
def holds() -> None:
    """Legal holds: while one is active, nothing it covers can be destroyed."""


@holds.command("place")
@click.argument("target_kind", type=click.Choice(["customer", "ticket", "complaint"]))
@click.argument("target_id")
@click.option("--authority", required=True, help="Who ordered the hold (court, regulator, counsel).")
@_reason_option
def place(target_kind: str, target_id: str, authority: str, reason: str | None) -> None:
    """Place a legal hold on a customer, ticket or complaint."""
    hold = _run(lambda r, who: r.place_hold(who.context(reason), target_kind=target_kind, target_id=target_id,
                                            authority=authority), "holds.place")
    click.echo(str(hold.id))


@holds.command("release")
@click.argument("hold_id")
@_reason_option
def release(hold_id: str, reason: str | None) -> None:
    """Release a legal hold, with a reason."""
    hold = _run(lambda r, who: r.release_hold(who.context(reason), hold_id), "holds.release")
    click.echo(f"{hold.id} {hold.status}")


@holds.command("list")
@click.option("--active", is_flag=True, help="Only active holds.")
def list_holds(active: bool) -> None:
    rows = _run(lambda r: r.holds(active_only=active))
    table = Table("hold", "target", "subject", "authority", "status", "placed", "released")
    for h in rows:
        table.add_row(h["hold_id"], f"{h['target_kind']} {h['target_id']}", h["subject"], h["authority"], h["status"],
                      f"{h['placed_at']} by {h['placed_by']}", h["released_at"] or "-")
    Console().print(table)


COMMANDS = [retention, holds]
