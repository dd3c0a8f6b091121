"""The ``caseledger`` command line."""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from cli.access import COMMANDS as ACCESS_COMMANDS
from cli.access import issue_demo_tokens
from cli.context import create_ledger, settings
from cli.database import db
from cli.errors import SafeGroup
from cli.history import import_history
from cli.identity import acting
from cli.integrity import COMMANDS as INTEGRITY_COMMANDS
from cli.projections import projections, replay
from cli.reports import COMMANDS as REPORT_COMMANDS
from cli.retention import COMMANDS as RETENTION_COMMANDS
from cli.scheduler import COMMANDS as SCHEDULER_COMMANDS
from cli.webhooks import COMMANDS as WEBHOOK_COMMANDS
from cli.witness import witness
from ledger.bootstrap import policy_book, transparency_log
from ledger.database import redact
from ledger.keys import LogKeys
from ledger.records import event_record
from ledger.structured_logs import configure as configure_logs

console = Console(stderr=True)


@click.group(cls=SafeGroup)
# The installed distribution's version (pyproject.toml), read by importlib.metadata.
@click.version_option(package_name="caseledger", prog_name="caseledger")
@click.option("--debug", is_flag=True, help="Show the traceback of an unexpected error.")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path),
              help="File holding your API token (else CASELEDGER_TOKEN): commands that change something or "
                   "show personal data act as its holder.")
def main(debug: bool, token_file: Path | None) -> None:
    """caseledger: an event-sourced, audit-grade ledger for customer service operations.

    A command on a folder or database without a ledger stops with one line: create one with
    `caseledger db init` (or `serve`, or `demo`)."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--demo", is_flag=True, help="Load demo data into an empty ledger and create demo tokens.")
@click.option("--prod", is_flag=True, help="Production server: gunicorn with several worker processes.")
@click.option("--workers", type=int, help="With --prod: worker processes (default 2 × cores + 1; 1 on SQLite).")
@click.option("--threads", default=4, show_default=True, help="With --prod: threads per worker.")
@click.option("--bind", help="With --prod: HOST:PORT to listen on (default --host:--port).")
def serve(host: str, port: int, demo: bool, prod: bool, workers: int | None, threads: int, bind: str | None) -> None:
    """Serve the HTTP API (development server, or gunicorn with --prod; see the README)."""
    config = settings()
    if prod:  # before the API is imported: prometheus_client reads this folder at import
        from cli.serving import default_workers, prepare_metrics_dir, serve_production

        prepare_metrics_dir(config)
    from api import create_app

    ledger, _ = create_ledger()  # serving a new ledger starts one (tables, key-encryption and signing keys)
    if demo:
        LogKeys.from_settings(settings()).ensure()
        if ledger.recorder.max_notification_id() in (None, 0):
            _load_demo(ledger)
            transparency_log(ledger, settings()).publish_checkpoint(datetime.now(timezone.utc))
        issue_demo_tokens(ledger)  # after the emptiness check: tokens are events too
    if prod:  # the tables exist now; each worker builds its own ledger after the fork
        ledger.close()
        return serve_production(config, bind or f"{host}:{port}", workers=workers or default_workers(), threads=threads)
    configure_logs("api")  # JSON lines, like every process (ledger/structured_logs.py)
    app = create_app(config, ledger)
    base = f"http://{host}:{port}"
    console.print(f"[bold green]caseledger[/] on [bold]{base}[/]  ({config.backend}: {redact(config.database_url)})")
    console.print(f"  web console: {base}/console/ (sign in with a token above)   API docs: {base}/docs")
    console.print(f"  OpenAPI: {base}/openapi.json   latest events: curl -H 'Authorization: Bearer <auditor token>' "
                  f"'{base}/events?limit=5'")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the API logs one JSON line per request itself
    app.run(host=host, port=port, threaded=True, debug=False, use_reloader=False)


@main.command()
@click.option("--customers", default=40, show_default=True)
@click.option("--interactions", default=300, show_default=True)
@click.option("--seed", default=7, show_default=True)
def demo(customers: int, interactions: int, seed: int) -> None:
    """Load a realistic demo data set (customers, interactions, tickets, complaints, surveys), creating
    the ledger and its signing key if needed, and publish a checkpoint: `caseledger verify` then passes."""
    ledger, _ = create_ledger()
    LogKeys.from_settings(settings()).ensure()
    _load_demo(ledger, customers=customers, interactions=interactions, seed=seed)
    checkpoint, _ = transparency_log(ledger, settings()).publish_checkpoint(datetime.now(timezone.utc))
    console.print(f"published a checkpoint of {checkpoint.size} leaves")


def _load_demo(ledger: Any, **kwargs: Any) -> None:
    from cli.demo import load_demo

    total = kwargs.get("customers", 40) + kwargs.get("interactions", 300)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("loading demo data", total=total)
        counts = load_demo(ledger, progress=lambda n: progress.advance(task, n), **kwargs)
    console.print("demo data: " + ", ".join(f"{v} {k}" for k, v in counts.items())
                  + f"; {ledger.recorder.max_notification_id()} events")


@main.command("import-interactions")
@click.argument("file", type=click.File("rb"))
@click.option("--batch-size", default=500, show_default=True)
def import_interactions(file: Any, batch_size: int) -> None:
    """Import interactions from newline-delimited JSON (same fields as POST /interactions/import), as
    the holder of your token (interaction.import).

    Every line is validated first; one bad line rejects the whole file and nothing is written."""
    from api.resources import parse_import_lines

    data = file.read()
    # Split the bytes on line feeds only, as the API does: U+2028 inside a JSON string is no line
    # break, and each line is decoded as strict UTF-8 (a line that is not is refused, naming it).
    lines = data.split(b"\n")
    who = acting("interaction.import")
    ledger = who.ledger
    records, errors = parse_import_lines(lines, caller=who.caller.actor_id)
    source = f"{getattr(file, 'name', 'stdin')} sha256:{hashlib.sha256(data).hexdigest()}"
    batch = [(who.context(imported=source if when else None, occurred_at=when), fields) for when, fields in records]
    if not errors:
        # The ledger's own refusals too (a channel outside the policy's vocabulary, an unknown
        # customer), before anything is saved: records are the file's non-blank lines, in order.
        numbers = [number for number, line in enumerate(lines, start=1) if line.strip()]
        errors = {f"line {numbers[index]}": str(problem)
                  for index, problem in ledger.check_interactions(batch).items()}
    if errors:
        # One plain line per problem (rich would wrap long ones), nothing written.
        for where, problem in errors.items():
            click.echo(f"error: {where}: {' '.join(str(problem).split())}", err=True)
        raise SystemExit(1)
    report = ledger.import_interactions(batch, batch_size=batch_size)
    console.print(f"imported {report['imported']}, skipped {report['skipped']} already imported, "
                  f"of {len(records)} lines")


@main.command()
@click.option("--kind", type=click.Choice(["customer", "interaction", "ticket", "complaint", "feedback", "survey"]))
@click.option("--id", "aggregate_id", help="Only events of this aggregate.")
@click.option("--type", "event_type", help="Only events of this type, e.g. Escalated.")
@click.option("--actor", help="Only events by this actor.")
@click.option("--after", default=0, show_default=True, help="Start after this log position.")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (personal data masked).")
@click.option("--reason", help="With --json: show personal data unmasked, for this reason (personal.unmask; "
                               "recorded in the security audit log).")
def events(kind: str | None, aggregate_id: str | None, event_type: str | None, actor: str | None, after: int,
           limit: int, as_json: bool, reason: str | None) -> None:
    """List stored events in log order, with actor, role, time and policy (events.read)."""
    who = acting("events.read")
    disclosure = who.disclosure(reason)
    shown = 0
    table = Table("pos", "occurred at", "type", "aggregate", "v", "actor", "role", "policy")
    for position, event in _notifications(who.ledger, after):
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
            record["personal"] = disclosure.part(record["personal"])
            click.echo(json.dumps(record, ensure_ascii=False))
        else:
            meta = record["meta"]
            table.add_row(str(position), meta.get("occurred_at", ""), record["type"], record["aggregate_id"][:8],
                          str(record["version"]), meta.get("actor_id", ""), meta.get("actor_role", ""),
                          meta.get("policy", ""))
        shown += 1
        if shown >= limit:
            break
    who.record(disclosure, f"events --json after={after} limit={limit}")
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
    """List the policy versions, with the one governing new cases marked (no ledger needed)."""
    config = settings()
    book = policy_book(config)
    governing = book.versions(config.policy_name or book.default_name)
    table = Table("policy", "effective from", "extends", "title")
    for ref, policy in sorted(book.policies.items()):
        marker = " (default)" if policy in governing else ""
        table.add_row(ref + marker, policy.effective_from.isoformat(), policy.extends or "-", policy.title)
    Console().print(table)


# Command groups that live in modules of their own: the transparency log (keys, checkpoint, proof,
# verify, export, verify-bundle), retention and holds, tokens and access, read models and replay,
# `db harden`, and the scheduler with its jobs and findings.
for _command in (*INTEGRITY_COMMANDS, *RETENTION_COMMANDS, *ACCESS_COMMANDS, projections, replay, db,
                 *SCHEDULER_COMMANDS):
    main.add_command(_command)
main.add_command(witness)
main.add_command(import_history)
for _command in WEBHOOK_COMMANDS:  # caseledger webhooks deliver|list|dead-letters|replay (cli/webhooks.py)
    main.add_command(_command)
for _command in REPORT_COMMANDS:  # caseledger report run|list|verify (cli/reports.py)
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
