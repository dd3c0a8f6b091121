"""The ``caseledger`` command line."""

from __future__ import annotations

import json
import sys
from typing import Any

from datetime import datetime, timezone

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ledger.bootstrap import Settings, build, transparency_log
from ledger.keys import LogKeys
from ledger.records import event_record
from ledger.tokens import ROLES, Caller, TokenBook

console = Console(stderr=True)

#: Demo callers created by ``serve --demo`` when there is no token file yet.
DEMO_CALLERS = [Caller("agent-li", "agent", "hotline"), Caller("lead-wang", "team_lead", "hotline"),
                Caller("cm-zhou", "complaint_manager"), Caller("records-chen", "records_manager"),
                Caller("auditor-he", "auditor"), Caller("admin", "administrator")]


@click.group()
def main() -> None:
    """caseledger: an event-sourced, audit-grade ledger for customer service operations."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--demo", is_flag=True, help="Load demo data into an empty ledger and create demo tokens.")
def serve(host: str, port: int, demo: bool) -> None:
    """Serve the HTTP API (development server; see the README for production)."""
    from api import create_app

    settings = Settings.from_env()
    ledger = build()
    if demo:
        _ensure_demo_tokens(settings)
        LogKeys.from_env().ensure()
        if ledger.recorder.max_notification_id() in (None, 0):
            _load_demo(ledger)
            transparency_log(ledger).publish_checkpoint(datetime.now(timezone.utc))
    app = create_app(ledger)
    base = f"http://{host}:{port}"
    console.print(f"[bold green]caseledger[/] on [bold]{base}[/]  ({settings.backend}: {settings.database_url})")
    console.print(f"  OpenAPI: {base}/openapi.json   latest events: curl -H 'Authorization: Bearer <token>' "
                  f"'{base}/events?limit=5'")
    app.run(host=host, port=port, threaded=True, debug=False, use_reloader=False)


@main.command()
@click.option("--customers", default=40, show_default=True)
@click.option("--interactions", default=300, show_default=True)
@click.option("--seed", default=7, show_default=True)
def demo(customers: int, interactions: int, seed: int) -> None:
    """Load a realistic demo data set (customers, interactions, tickets, complaints, surveys)."""
    _load_demo(build(), customers=customers, interactions=interactions, seed=seed)


def _load_demo(ledger: Any, **kwargs: Any) -> None:
    from ledger.demo import load_demo

    total = kwargs.get("customers", 40) + kwargs.get("interactions", 300)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("loading demo data", total=total)
        counts = load_demo(ledger, progress=lambda n: progress.advance(task, n), **kwargs)
    console.print("demo data: " + ", ".join(f"{v} {k}" for k, v in counts.items())
                  + f"; {ledger.recorder.max_notification_id()} events")


def _ensure_demo_tokens(settings: Settings) -> None:
    path = settings.tokens_file
    book = TokenBook.load(path)
    if path.exists():
        console.print(f"API tokens: existing file {path} (tokens are stored hashed; create more with "
                      "'caseledger tokens create')")
        return
    table = Table(title="Demo API tokens (shown once; only their hashes are stored)")
    for column in ("actor", "role", "token"):
        table.add_column(column)
    for caller in DEMO_CALLERS:
        table.add_row(caller.actor_id, caller.role, book.issue(caller))
    book.save(path)
    console.print(table)


@main.command("import-interactions")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--actor", default="import", show_default=True, help="Actor recorded on the imported events.")
@click.option("--role", default="service", show_default=True, type=click.Choice(ROLES))
@click.option("--batch-size", default=500, show_default=True)
def import_interactions(file: Any, actor: str, role: str, batch_size: int) -> None:
    """Import interactions from newline-delimited JSON (same fields as POST /interactions/import).

    Every line is validated first; one bad line rejects the whole file and nothing is written."""
    import uuid

    from api.resources import parse_import_lines
    from domain.context import Context

    records, errors = parse_import_lines(file.read().splitlines())
    if errors:
        for where, problem in errors.items():
            console.print(f"[red]{where}[/]: {problem}")
        raise SystemExit(1)
    now = datetime.now(timezone.utc)
    request_id = f"cli-import-{uuid.uuid4().hex[:12]}"
    batch = [(Context(actor, role, when or now, request_id), fields) for when, fields in records]
    report = build().import_interactions(batch, batch_size=batch_size)
    console.print(f"imported {report['imported']}, skipped {report['skipped']} already imported, "
                  f"of {len(records)} lines")


@main.group()
def tokens() -> None:
    """API bearer tokens."""


@tokens.command("create")
@click.option("--actor", required=True)
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--team", default=None)
def tokens_create(actor: str, role: str, team: str | None) -> None:
    """Create a token for an actor; prints it once (only its hash is stored)."""
    settings = Settings.from_env()
    book = TokenBook.load(settings.tokens_file)
    try:
        token = book.issue(Caller(actor, role, team))
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    book.save(settings.tokens_file)
    click.echo(token)


@main.command()
@click.option("--kind", type=click.Choice(["customer", "interaction", "ticket", "complaint", "feedback", "survey"]))
@click.option("--id", "aggregate_id", help="Only events of this aggregate.")
@click.option("--type", "event_type", help="Only events of this type, e.g. Escalated.")
@click.option("--actor", help="Only events by this actor.")
@click.option("--after", default=0, show_default=True, help="Start after this log position.")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def events(kind: str | None, aggregate_id: str | None, event_type: str | None, actor: str | None, after: int,
           limit: int, as_json: bool) -> None:
    """List stored events in log order, with actor, role, time and policy."""
    ledger = build()
    shown = 0
    table = Table("pos", "occurred at", "type", "aggregate", "v", "actor", "role", "policy")
    for position, event in _notifications(ledger, after):
        record = event_record(event, position)
        if kind and not record["topic"].startswith(f"domain.{kind}:") and not (
                kind == "survey" and "SurveyResponse" in record["topic"]):
            continue
        if aggregate_id and record["aggregate_id"] != aggregate_id:
            continue
        if event_type and record["type"] != event_type:
            continue
        if actor and record["meta"].get("actor_id") != actor:
            continue
        if as_json:
            click.echo(json.dumps(record, ensure_ascii=False))
        else:
            meta = record["meta"]
            table.add_row(str(position), meta.get("occurred_at", ""), record["type"], record["aggregate_id"][:8],
                          str(record["version"]), meta.get("actor_id", ""), meta.get("actor_role", ""),
                          meta.get("policy", ""))
        shown += 1
        if shown >= limit:
            break
    if not as_json:
        Console().print(table)


def _notifications(ledger: Any, after: int):
    """(position, domain event) pairs in log order, read in pages."""
    while True:
        page = ledger.log(after=after, limit=500)
        if not page:
            return
        yield from page
        after = page[-1][0]


@main.command()
def policies() -> None:
    """List the policy versions, with the default marked."""
    ledger = build()
    table = Table("policy", "effective from", "extends", "title")
    for ref, policy in sorted(ledger.policies.policies.items()):
        marker = " (default)" if policy.name == ledger.policy_name else ""
        table.add_row(ref + marker, policy.effective_from.isoformat(), policy.extends or "-", policy.title)
    Console().print(table)


# Command groups that live beside their own subsystems plug in here.
from ledger.cli_integrity import COMMANDS as _INTEGRITY_COMMANDS  # noqa: E402
from ledger.cli_retention import COMMANDS as _RETENTION_COMMANDS  # noqa: E402
from projections.cli import projections, replay  # noqa: E402

for _command in (*_INTEGRITY_COMMANDS, *_RETENTION_COMMANDS, projections, replay):
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
