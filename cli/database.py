"""``caseledger db harden``: append-only by role privileges too (PostgreSQL; see ``ledger.hardening``)."""

from __future__ import annotations

import click

from cli.context import open_ledger
from ledger.hardening import harden


@click.group()
def db() -> None:
    """The ledger's database."""


@db.command("harden")
@click.option("--app-role", help="Role the application connects as (gets SELECT and INSERT on history).")
def harden_command(app_role: str | None) -> None:
    """Revoke UPDATE, DELETE and TRUNCATE on events and the log from the application role and PUBLIC
    (PostgreSQL; run as the tables' owner)."""
    try:
        for statement in harden(open_ledger().recorder, app_role):
            click.echo(statement + ";")
    except ValueError as e:
        raise click.ClickException(str(e)) from None
