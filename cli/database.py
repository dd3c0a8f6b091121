"""``caseledger db init`` (create a ledger) and ``caseledger db harden`` (append-only by role
privileges too, PostgreSQL; see ``ledger.hardening``)."""

from __future__ import annotations

import click

from cli.context import create_ledger, open_ledger, settings
from ledger.database import location
from ledger.hardening import harden
from ledger.keys import LogKeys


@click.group()
def db() -> None:
    """The ledger's database."""


@db.command("init")
def init_command() -> None:
    """Create the ledger where the settings point: its tables, key-encryption key and log signing key.

    The one way to start a new ledger besides `serve` and `demo`: every other command refuses to
    run where there is none, so a mistyped CASELEDGER_HOME cannot start an empty one by accident."""
    ledger, created = create_ledger()
    try:
        # Also for a ledger made before `db init` existed (or by `serve`): its signing key, if missing.
        log_keys = LogKeys.from_settings(settings())
        log_keys.ensure()
    finally:
        ledger.close()
    where = location(settings())
    click.echo(f"created a ledger at {where}" if created else f"a ledger exists at {where}; nothing to create",
               err=True)
    click.echo(f"signing key: {log_keys.signing_file}; verifier key: {log_keys.verifier_file}", err=True)


@db.command("harden")
@click.option("--app-role", help="Role the application connects as (gets SELECT and INSERT on history).")
def harden_command(app_role: str | None) -> None:
    """Revoke UPDATE, DELETE and TRUNCATE on events and the log from the application role and PUBLIC
    (PostgreSQL; run as the tables' owner)."""
    # The ledger must outlive the statements: it owns the recorder's connection pool, and closes
    # that pool when it is garbage-collected (which a bare ``open_ledger().recorder`` allowed at once).
    ledger = open_ledger()
    try:
        statements = harden(ledger.recorder, app_role)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    finally:
        ledger.close()
    for statement in statements:
        click.echo(statement + ";")
