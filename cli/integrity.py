"""``caseledger`` commands for the transparency log: keys, checkpoints, proofs, verify, export.

Exit codes of the checks (``verify``, ``verify-bundle``): 0 verified against pinned keys, 1 the data
does not verify (or bad input), 3 signed by a key that is not pinned — never reported as OK.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli.context import open_ledger, settings
from cli.errors import OneLineError
from cli.identity import acting
from cli.params import MOMENT
from ledger.bootstrap import transparency_log
from ledger.checkpoint_files import read_notes
from ledger.integrity.bundle import BundleInvalid, verify_bundle
from ledger.integrity.checkpoint import Checkpoint, CheckpointError
from ledger.integrity.trust import TrustSet, UntrustedSignature
from ledger.keys import KeyMissing, LogKeys
from ledger import snapshots
from ledger.transparency import LogError, TransparencyLog
from services.export import ExportError, Scope, write_bundle

console = Console(stderr=True)
UNTRUSTED = 3  # exit code: signed, but not by a pinned key


def _fail(message: str, code: int = 1) -> NoReturn:
    raise OneLineError(message, code)  # one line on stderr, never wrapped (cli.errors)


def _trust(path: Path | None, log: TransparencyLog | None = None) -> TrustSet:
    """Pinned keys from ``--trust FILE``; else this installation's key files (outside the database)."""
    try:
        if path is not None:
            return TrustSet.from_file(path)
        if log is None:
            _fail("give --trust FILE: the log's verifier key, obtained out of band", UNTRUSTED)
        return log.keys.trusted()
    except (CheckpointError, KeyMissing) as e:
        _fail(str(e))


TRUST_OPTION = click.option("--trust", "--key", "trust_file", type=click.Path(dir_okay=False, path_type=Path),
                            help="File of pinned verifier keys (signed-note format, one per line).")
@click.group()
def keys() -> None:
    """The log's Ed25519 signing key (kept in files, never in the database)."""


@keys.command("init")
@click.option("--origin", help="The log's name (default: CASELEDGER_LOG_ORIGIN, else made unique).")
@click.option("--force", is_flag=True, help="Replace an existing key (old checkpoints will no longer verify).")
def keys_init(origin: str | None, force: bool) -> None:
    """Create the signing key and print the verifier key auditors need."""
    log_keys = LogKeys.from_settings(settings())
    try:
        text = log_keys.init(force=force, origin=origin)
    except (FileExistsError, CheckpointError) as e:
        _fail(str(e))
    console.print(f"signing key: {log_keys.signing_file} (keep it secret)\nverifier key: {log_keys.verifier_file}")
    click.echo(text)


@keys.command("show")
def keys_show() -> None:
    """Print the log's verifier key (give it to auditors out of band) and the retired ones."""
    log_keys = LogKeys.from_settings(settings())
    try:
        current = log_keys.verifier_text()
    except KeyMissing as e:
        _fail(str(e))
    for retired in log_keys.retired():
        click.echo(f"# retired\n{retired}")
    click.echo(current)


@keys.command("rotate")
def keys_rotate() -> None:
    """Replace the signing key: the new key is announced in a checkpoint signed by the old one."""
    log = transparency_log(open_ledger(), settings())
    try:
        checkpoint, _ = log.rotate_key(datetime.now(timezone.utc))
    except KeyMissing as e:
        _fail(str(e))
    console.print(f"new key announced in the checkpoint of tree size {checkpoint.size}, signed by the old key")
    click.echo(checkpoint.next_key)


@click.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the signed note to this file (keep copies outside the database).")
def checkpoint(out: Path | None) -> None:
    """Sign and publish a checkpoint of the log as it is now; prints the signed note."""
    log = transparency_log(open_ledger(), settings())
    try:
        _, note = log.publish_checkpoint(datetime.now(timezone.utc))
        if out is not None:
            out.write_text(note, encoding="utf-8")
    except (KeyMissing, OSError) as e:
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
@TRUST_OPTION
@click.option("--since", "since", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="A checkpoint note kept outside the database, or a folder of them: the log must reproduce "
                   "each (catches truncation and rewrites of the whole database).")
@click.option("--witness", "witness_files", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A witness's verifier key file (repeatable).")
@click.option("--witnesses-required", type=click.IntRange(min=0), default=0, show_default=True,
              help="How many of the given witnesses must have cosigned a checkpoint of this log.")
def verify(trust_file: Path | None, since: tuple[Path, ...], witness_files: tuple[Path, ...],
           witnesses_required: int) -> None:
    """Recompute the whole log from the stored events; check it against every signed checkpoint, in the
    database and (--since) outside it."""
    if witnesses_required and not witness_files:  # a required check with nothing to check it against
        raise click.UsageError("--witnesses-required needs the witnesses' keys: give --witness FILE")
    log = transparency_log(open_ledger(), settings())
    trust = _trust(trust_file, log)
    external = _external_checkpoints(since, trust)
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

            report = log.verify(progress=advance, trust=trust, external=[c for _, c in external])
    except UntrustedSignature as e:
        _fail(f"a checkpoint in the database is {e}", UNTRUSTED)
    except (CheckpointError, KeyMissing) as e:
        _fail(f"checkpoint signature: {e}")
    if not report.ok:
        p = report.first_problem
        where = f"leaf {p.leaf_index}" + (f" (log position {p.position}, {p.label})" if p.position else "")
        _fail(f"log differs at {where}: {p.description}{_bounds(p.leaf_index, external)}")
    witnessed = _check_witnesses(log, trust, witness_files, witnesses_required) if witness_files else ""
    elapsed = time.perf_counter() - started
    rate = report.leaves / elapsed if elapsed else 0
    outside = f", {len(external)} from outside the database" if external else ""
    console.print(f"[bold green]OK[/] {_count(report.leaves, 'leaf', 'leaves')}, "
                  f"{_count(report.checkpoints_checked, 'checkpoint', 'checkpoints')}{outside} "
                  f"verified in {elapsed:.2f}s ({rate:,.0f} leaves/s){witnessed}")
    console.print(f"the log covers events only: {snapshots.NOT_COVERED}")  # issue 22: say what was not checked


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _external_checkpoints(paths: tuple[Path, ...], trust: TrustSet) -> list[tuple[str, Checkpoint]]:
    found = []
    for path in paths:
        try:
            notes = read_notes(path)
        except (OSError, UnicodeDecodeError) as e:
            _fail(f"{path}: {e}")
        for name, note in notes:
            try:
                found.append((name, trust.open_checkpoint(note)[0]))
            except UntrustedSignature as e:
                _fail(f"{name} is {e}", UNTRUSTED)
            except CheckpointError as e:
                _fail(f"{name}: {e}")
    if paths and not found:
        _fail(f"no checkpoint notes in {', '.join(map(str, paths))}")
    return found


def _bounds(leaf: int, external: list[tuple[str, Checkpoint]]) -> str:
    """Where the damage lies, by the external checkpoints that still hold and the first that fails."""
    if not external:
        return ""
    held = [(c.size, name) for name, c in external if c.size <= leaf]
    failed = [(c.size, name) for name, c in external if c.size > leaf]
    parts = []
    if held:
        parts.append(f"the first {max(held)[0]} leaves still match {max(held)[1]}")
    if failed:
        parts.append(f"{min(failed)[1]} (tree size {min(failed)[0]}) no longer matches")
    return "; " + "; ".join(parts) if parts else ""


def _check_witnesses(log: TransparencyLog, trust: TrustSet, files: tuple[Path, ...], required: int) -> str:
    from ledger.integrity.cosignature import CosignatureError, load_witness_vkey, verify_cosignatures

    try:
        witnesses = [load_witness_vkey(line) for path in files for line in path.read_text(encoding="utf-8").splitlines()
                     if line.strip() and not line.startswith("#")]
    except (OSError, UnicodeDecodeError, CheckpointError) as e:
        _fail(f"witness key: {e}")
    best: tuple[int, list[str]] = (-1, [])
    for note in reversed(log.checkpoint_notes()):
        try:
            names = verify_cosignatures(note, witnesses, required)
        except CosignatureError:
            continue
        best = (trust.open_checkpoint(note)[0].size, names)
        break
    if best[0] < 0:
        _fail(f"no checkpoint of this log carries {required} valid cosignatures by the given witnesses")
    return f"; the checkpoint of tree size {best[0]} is cosigned by {', '.join(best[1]) or 'no witness'}"


@click.command("attach-cosignatures")
@click.argument("note_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def attach_cosignatures(note_file: Path) -> None:
    """Store a published checkpoint again, now carrying witnesses' cosignatures (from 'witness cosign')."""
    log = transparency_log(open_ledger(), settings())
    try:
        checkpoint = log.attach_cosigned(note_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, CheckpointError, KeyMissing, LogError) as e:
        _fail(str(e))
    console.print(f"stored the cosigned checkpoint of tree size {checkpoint.size}")


@click.command("export")
@click.option("--scope", type=click.Choice(["customer", "ticket", "complaint", "range", "period"]),
              help="What to export (default: period when --from/--to are given).")
@click.option("--id", "scope_id", help="Customer, ticket or complaint id.")
@click.option("--from-position", type=click.IntRange(min=1), default=1, show_default=True,
              help="Range start (log position).")
@click.option("--to-position", type=click.IntRange(min=1), help="Range end, inclusive (default: the end).")
@click.option("--from", "from_time", type=MOMENT, help="Period start, business time (inclusive, ISO 8601 with zone).")
@click.option("--to", "to_time", type=MOMENT, help="Period end, business time (exclusive).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write the bundle to.")
def export(scope: str | None, scope_id: str | None, from_position: int, to_position: int | None,
           from_time: datetime | None, to_time: datetime | None, out: Path) -> None:
    """Write a sealed auditor bundle (see the README) for a customer, a case with its related records,
    a log range, or a business-time period (--from/--to)."""
    scope = scope or ("period" if from_time or to_time else None)
    if scope is None:
        raise click.UsageError("give --scope, or --from and --to for a period")
    if scope == "period" and not (from_time and to_time):
        raise click.UsageError("a period export needs --from and --to")
    if scope not in ("range", "period") and not scope_id:
        raise click.UsageError(f"--scope {scope} needs --id")
    if out.exists() and any(out.iterdir()):
        _fail(f"{out} is not empty: give a new folder")
    try:
        chosen = Scope(scope, scope_id, from_position, to_position, from_time, to_time)
        ledger = acting("events.read").ledger  # an auditor's act; the bundle holds personal data sealed only
        log = transparency_log(ledger, settings())
        manifest = write_bundle(log, ledger, chosen, out, datetime.now(timezone.utc))
    except (KeyMissing, ExportError, OSError) as e:
        _fail(str(e))
    console.print(f"wrote {manifest['events']} events to {out} (tree size {manifest['checkpoint']['size']})")


@click.command("verify-bundle")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@TRUST_OPTION
def verify_bundle_command(folder: Path, trust_file: Path | None) -> None:
    """Check an export bundle offline against pinned keys: signatures, completeness, every event's
    inclusion proof, and every readable field against the signed bytes."""
    if trust_file is None:
        carried = folder / "log-verifier.txt"
        shown = carried.read_text(encoding="utf-8", errors="replace").strip() if carried.exists() else "none"
        _fail(f"not verified: no pinned key. The bundle says it is signed by {shown!r}; obtain the log's "
              "verifier key out of band and pass it with --trust FILE", UNTRUSTED)
    trust = _trust(trust_file)
    try:
        summary = verify_bundle(folder, trust)
    except UntrustedSignature as e:
        _fail(f"not verified: the bundle is {e}", UNTRUSTED)
    except BundleInvalid as e:
        _fail(str(e))
    except CheckpointError as e:
        _fail(f"manifest.note: {e}")
    console.print(f"[bold green]OK[/] {summary['events']} events are in the log {summary['origin']} "
                  f"(checkpoint of {summary['tree_size']} leaves, signed {summary['checkpoint_time']}); "
                  f"scope {summary['scope']['kind']} complete")


COMMANDS = [keys, checkpoint, attach_cosignatures, proof, verify, export, verify_bundle_command]
