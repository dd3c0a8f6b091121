"""``caseledger import-history FILE``: a previous helpdesk's history, every case kind (``services.history_import``).

The importer acts as the holder of their token (``history.import``): every imported event records
them as its actor, at the original business time, with ``imported`` naming the file and its
SHA-256 — so the file an event came from can be found and checked again later.
"""

from __future__ import annotations

import hashlib
from typing import Any

import click
from rich.console import Console

from cli.identity import acting
from services.history_import import HistoryImport

console = Console(stderr=True)


@click.command("import-history")
@click.argument("file", type=click.File("rb"))
@click.option("--dry-run", is_flag=True, help="Check the whole file and say what would be imported; write nothing.")
def import_history(file: Any, dry_run: bool) -> None:
    """Import customers, interactions, tickets, complaints, feedback and surveys with their whole
    history from newline-delimited JSON (format: README, "Importing history"), as the holder of your
    token (history.import).

    Every line is checked first by building its case in memory; one bad line refuses the whole
    file and nothing is written. Cases imported before (same kind and ref) are skipped."""
    who = acting("history.import")
    data = file.read()
    source = f"{getattr(file, 'name', 'stdin')} sha256:{hashlib.sha256(data).hexdigest()}"
    importer = HistoryImport(who.ledger, lambda at, reason, person: who.context(
                                 reason, imported=source, occurred_at=at, performed_by=person),
                             now=who.ledger.clock())
    plan = importer.check(data)
    if plan.errors:
        # One plain line per refused line (rich would wrap long ones); nothing was written.
        for number, problem in plan.errors:
            where = f"line {number}: " if number else ""
            click.echo(f"error: {where}{' '.join(problem.split())}", err=True)
        if plan.more_errors:
            click.echo(f"error: {plan.more_errors} more lines refused", err=True)
        if plan.lines:
            click.echo(f"error: {len(plan.errors) + plan.more_errors} of {plan.lines} lines refused; nothing was "
                       "imported", err=True)
        raise SystemExit(1)
    report = importer.preview(plan) if dry_run else importer.save(plan)
    kinds = ", ".join(f"{kind} {counts['imported']}/{counts['skipped']}"
                      for kind, counts in report["by_kind"].items() if counts["imported"] or counts["skipped"])
    verb = "would import" if dry_run else "imported"
    events = "" if dry_run else f" ({report['events']} events)"
    console.print(f"{verb} {report['imported']}{events}, skipped {report['skipped']} already imported, of "
                  f"{report['lines']} lines; by kind (imported/skipped): {kinds}", soft_wrap=True)
