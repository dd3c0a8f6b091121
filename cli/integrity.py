"""``caseledger`` commands for the transparency log: keys, checkpoints, proofs, verify, export."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli.context import open_ledger, settings
from ledger.bootstrap import transparency_log
from ledger.integrity.checkpoint import CheckpointError
from ledger.keys import KeyMissing, LogKeys
from ledger.records import event_record
from ledger.transparency import LogError
from services.export import BundleInvalid, verify_bundle, write_bundle

console = Console(stderr=True)


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise SystemExit(1)


@click.group()
def keys() -> None:
    """The log's Ed25519 signing key (kept in files, never in the database)."""


@keys.command("init")
@click.option("--force", is_flag=True, help="Replace an existing key (old checkpoints will no longer verify).")
def keys_init(force: bool) -> None:
    """Create the signing key and print the verifier key auditors need."""
    log_keys = LogKeys.from_settings(settings())
    try:
        text = log_keys.init(force=force)
    except FileExistsError as e:
        _fail(str(e))
    console.print(f"signing key: {log_keys.signing_file} (keep it secret)\nverifier key: {log_keys.verifier_file}")
    click.echo(text)


@click.command()
def checkpoint() -> None:
    """Sign and publish a checkpoint of the log as it is now; prints the signed note."""
    log = transparency_log(open_ledger(), settings())
    try:
        _, note = log.publish_checkpoint(datetime.now(timezone.utc))
    except KeyMissing as e:
        _fail(str(e))
    click.echo(note, nl=False)


@click.command()
@click.option("--aggregate", "aggregate_id", help="Inclusion proof for this aggregate's event …")
@click.option("--version", type=int, help="… at this version.")
@click.option("--old-size", type=int, help="Consistency proof from this tree size …")
@click.option("--new-size", type=int, help="… to this one (default: now).")
def proof(aggregate_id: str | None, version: int | None, old_size: int | None, new_size: int | None) -> None:
    """Print an inclusion or consistency proof as JSON."""
    log = transparency_log(open_ledger(), settings())
    size = new_size if new_size is not None else log.size()
    try:
        if aggregate_id and version:
            index, position, _ = log.leaf_of(aggregate_id, version)
            out: dict[str, Any] = {"leaf_index": index, "position": position, "tree_size": size,
                                   "proof": [h.hex() for h in log.inclusion_proof(index, size)]}
        elif old_size is not None:
            out = {"old_size": old_size, "new_size": size,
                   "proof": [h.hex() for h in log.consistency_proof(old_size, size)]}
        else:
            raise click.UsageError("give --aggregate and --version, or --old-size")
    except LogError as e:
        _fail(str(e))
    out["root"] = log.root(size).hex()
    click.echo(json.dumps(out, indent=2))


@click.command()
def verify() -> None:
    """Recompute the whole log from the stored events; check it against every retained checkpoint."""
    log = transparency_log(open_ledger(), settings())
    total = log.size()
    started = time.perf_counter()
    columns = (TextColumn("verifying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[rate]}"))
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("verify", total=total, rate="")

            def advance(done: int) -> None:
                elapsed = max(time.perf_counter() - started, 1e-9)
                progress.update(task, completed=done, rate=f"{done / elapsed:,.0f} leaves/s")

            report = log.verify(progress=advance)
    except (CheckpointError, KeyMissing) as e:
        _fail(f"checkpoint signature: {e}")
    elapsed = time.perf_counter() - started
    rate = report.leaves / elapsed if elapsed else 0
    if report.ok:
        console.print(f"[bold green]OK[/] {report.leaves} leaves, {report.checkpoints_checked} checkpoints "
                      f"verified in {elapsed:.2f}s ({rate:,.0f} leaves/s)")
        return
    p = report.first_problem
    _fail(f"log differs at leaf {p.leaf_index} (log position {p.position}, {p.label}): {p.description}")


@click.command("export")
@click.option("--scope", type=click.Choice(["customer", "ticket", "complaint", "range"]), required=True)
@click.option("--id", "scope_id", help="Customer, ticket or complaint id.")
@click.option("--from-position", type=int, default=1, show_default=True, help="Range start (log position).")
@click.option("--to-position", type=int, help="Range end, inclusive (default: the end).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder to write the bundle to.")
def export(scope: str, scope_id: str | None, from_position: int, to_position: int | None, out: Path) -> None:
    """Write a self-contained auditor bundle (see the README) for a customer, case or log range."""
    if scope != "range" and not scope_id:
        raise click.UsageError(f"--scope {scope} needs --id")
    ledger = open_ledger()
    log = transparency_log(ledger, settings())
    selected = list(_in_scope(ledger, scope, scope_id, from_position, to_position))
    try:
        manifest = write_bundle(log, selected, out, {"scope": scope, "id": scope_id, "from": from_position,
                                                    "to": to_position}, datetime.now(timezone.utc), event_record)
    except KeyMissing as e:
        _fail(str(e))
    console.print(f"wrote {manifest['events']} events to {out} (tree size {manifest['tree_size']})")


def _in_scope(ledger: Any, scope: str, scope_id: str | None, start: int, stop: int | None) -> Iterator[tuple[int, Any]]:
    """(position, event) pairs in scope, in log order. A customer's scope is their own events and
    every event of any case, legal hold or disposition (destruction certificate) that names them."""
    members = {scope_id} if scope in ("ticket", "complaint") else set()
    after = start - 1 if scope == "range" else 0
    chosen: list[tuple[int, Any]] = []
    while True:
        page = ledger.log(after=after, limit=1000)
        if not page:
            break
        for position, event in page:
            if scope == "range":
                if stop is not None and position > stop:
                    return iter(chosen)
                chosen.append((position, event))
                continue
            oid = str(event.originator_id)
            names = (getattr(event, "customer_id", None), getattr(event, "subject", None))
            if scope == "customer" and (oid == scope_id or scope_id in names):
                members.add(oid)
            if oid in members:
                chosen.append((position, event))
        after = page[-1][0]
    return iter(chosen)


@click.command("verify-bundle")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
def verify_bundle_command(folder: Path) -> None:
    """Check an export bundle offline: signature, file hashes, and every event's inclusion proof."""
    try:
        summary = verify_bundle(folder)
    except BundleInvalid as e:
        _fail(str(e))
    console.print(f"[bold green]OK[/] {summary['events']} events are in the log {summary['origin']} "
                  f"(checkpoint of {summary['tree_size']} leaves, signed {summary['checkpoint_time']})")


COMMANDS = [keys, checkpoint, proof, verify, export, verify_bundle_command]
