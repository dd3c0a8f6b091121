"""``caseledger tokens create | revoke | list`` and ``caseledger access-events``: access control from the shell.

Managing tokens is an administrator's act, given with an administrator's own token
(``cli.identity``). The very first token of a ledger is made by ``tokens bootstrap``, which works
only while the ledger has no token at all; that act is an event like every other.
"""

from __future__ import annotations

import getpass
import json
import socket
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from cli.context import open_ledger
from cli.customers import COMMANDS as CUSTOMER_COMMANDS
from cli.errors import OneLineError
from cli.identity import acting, os_user
from domain.context import Context
from domain.errors import DomainError
from domain.permissions import AccessPolicy
from ledger.errors import NotFound
from services.access_log import AccessLog
from services.tokens import TokenService, system_context

console = Console(stderr=True)

#: (actor, role, team) of the tokens ``caseledger serve --demo`` prints.
DEMO_CALLERS = [("agent-li", "agent", "hotline"), ("lead-wang", "team_lead", "hotline"),
                ("cm-zhou", "complaint_manager", None), ("records-chen", "records_manager", None),
                ("compliance-xu", "compliance_officer", None), ("auditor-he", "auditor", None),
                ("admin", "administrator", None)]
#: Demo tokens expire on their own: a new set is printed on every start.
DEMO_TOKEN_LIFETIME = timedelta(hours=24)


def _operator() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "cli:unknown"


def issue_demo_tokens(ledger: Any) -> None:
    """Issue and print one token per demo caller (valid for DEMO_TOKEN_LIFETIME)."""
    service = TokenService(ledger)
    expires = datetime.now(timezone.utc) + DEMO_TOKEN_LIFETIME
    # Plain lines, never a table: a token must be copyable whatever the terminal's width.
    lines = [f"Demo API tokens (shown once, stored hashed; valid until {expires:%Y-%m-%d %H:%M} UTC):"]
    for actor, role, team in DEMO_CALLERS:
        secret, _ = service.issue(actor, role, team, expires_at=expires,
                                  ctx=system_context(_operator(), reason="caseledger serve --demo"))
        lines.append(f"  {role:<19} {actor:<14} {secret}")
    click.echo("\n".join(lines), err=True)


@click.group()
def tokens() -> None:
    """API bearer tokens (stored hashed, as events: issued, revoked)."""


@tokens.command("bootstrap")
@click.option("--actor", required=True, help="The first administrator's user id.")
@click.option("--expires-in", "expires_in", type=click.IntRange(min=1), default=30, show_default=True,
              help="Days until the token expires.")
def tokens_bootstrap(actor: str, expires_in: int) -> None:
    """Create the first administrator token of a ledger that has none; prints it once."""
    ledger = open_ledger()
    service = TokenService(ledger)
    if next(service.tokens(), None) is not None:
        raise OneLineError("refused: this ledger has tokens already; an administrator creates more with "
                           "'caseledger tokens create'")
    ctx = Context(actor, "administrator", datetime.now(timezone.utc), str(uuid.uuid4()),
                  reason="tokens bootstrap: the ledger's first administrator", via="cli", os_user=os_user(),
                  host=socket.gethostname())
    try:
        secret, record = service.issue(actor, "administrator", None,
                                       expires_at=datetime.now(timezone.utc) + timedelta(days=expires_in), ctx=ctx)
    except (ValueError, DomainError) as e:
        raise click.UsageError(str(e)) from None
    console.print(f"token id {record.id}: the first administrator, {actor}")
    click.echo(secret)


@tokens.command("create")
@click.option("--actor", required=True, help="Who the token speaks for (recorded on every event).")
@click.option("--role", required=True, type=click.Choice(sorted(AccessPolicy.load().roles)))
@click.option("--team", default=None, help="The actor's team (team leads see their team's cases).")
@click.option("--expires-in", "expires_in", type=click.IntRange(min=1), default=None,
              help="Days until the token expires (default: never).")
def tokens_create(actor: str, role: str, team: str | None, expires_in: int | None) -> None:
    """Create a token for someone (administrators); prints it once (only its hash is kept)."""
    who = acting("tokens.manage")
    expires = datetime.now(timezone.utc) + timedelta(days=expires_in) if expires_in else None
    try:
        secret, record = TokenService(who.ledger).issue(actor, role, team, expires_at=expires, ctx=who.context())
    except (ValueError, DomainError) as e:  # a bad name, role or expiry
        raise click.UsageError(str(e)) from None
    console.print(f"token id {record.id} (use it to revoke)")
    click.echo(secret)


@tokens.command("revoke")
@click.argument("token_id")
@click.option("--reason", required=True, help="Why (recorded with the revocation).")
def tokens_revoke(token_id: str, reason: str) -> None:
    """Revoke a token by its id (see `tokens list`); other processes notice within their cache time."""
    who = acting("tokens.manage")
    try:
        record = TokenService(who.ledger).revoke(token_id, who.context(reason))
    except (NotFound, DomainError, ValueError) as e:
        raise OneLineError(str(e)) from None
    console.print(f"revoked {record.id} ({record.holder}, {record.role})")


@tokens.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def tokens_list(as_json: bool) -> None:
    """Every token: id, actor, role, team, issued, expires, revoked (never the secret)."""
    who = acting("tokens.manage")
    now = datetime.now(timezone.utc)
    table = Table("id", "actor", "role", "team", "issued", "expires", "state")
    for record in TokenService(who.ledger).tokens():
        state = record.state if record.revoked_at or record.is_active(now) else "expired"
        row = {"id": str(record.id), "actor": record.holder, "role": record.role, "team": record.team,
               "issued_at": record.issued_at, "expires_at": record.expires_at, "revoked_at": record.revoked_at,
               "state": state}
        if as_json:
            click.echo(json.dumps(row, ensure_ascii=False))
        else:
            table.add_row(row["id"], row["actor"], row["role"], row["team"] or "", row["issued_at"][:19],
                          (row["expires_at"] or "never")[:19], state)
    if not as_json:
        Console().print(table)


@click.command("access-events")
@click.option("--subject", help="Only disclosures of this data subject (customer id).")
@click.option("--actor", help="Only disclosures to this actor.")
@click.option("--after", default=0, show_default=True, help="Start after this log position.")
@click.option("--limit", default=100, show_default=True)
def access_events(subject: str | None, actor: str | None, after: int, limit: int) -> None:
    """The security audit log: unmasked reads of personal data (JSON lines)."""
    ledger = acting("access.read").ledger
    entries, _ = AccessLog(ledger, AccessPolicy.load()).entries(after=after, limit=limit, subject=subject, actor=actor)
    for entry in entries:
        click.echo(json.dumps(entry, ensure_ascii=False))



def matrix(policy: AccessPolicy) -> list[tuple[str, list[str]]]:
    """(actions, scope per role) rows of the permission matrix; actions of one kind with the same
    scopes for every role share a row."""
    from ledger.application import ACTIONS

    kinds = ("customer", "interaction", "ticket", "complaint", "feedback", "survey")
    actions = [f"{kind}.{name}" for kind in kinds
               for name in ("read", "create", *sorted(ACTIONS[kind]),
                            *{"interaction": ["import"], "feedback": ["escalate"]}.get(kind, []))]
    actions += sorted({a for role in policy.roles.values() for a in role.grants
                       if "*" not in a and a.split(".")[0] not in kinds})
    rows: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for action in actions:
        scopes = tuple(policy.scope(role, action) or "–" for role in policy.roles)
        rows.setdefault((action.split(".")[0], scopes), []).append(action.split(".", 1)[1])
    return [(f"{group}.{', '.join(names)}", list(scopes)) for (group, scopes), names in rows.items()]


@click.command("permissions")
def permissions() -> None:
    """The permission matrix (role × action → scope) of domain/permissions.toml, as a Markdown table."""
    policy = AccessPolicy.load()
    click.echo("| action | " + " | ".join(policy.roles) + " |")
    click.echo("|---|" + "---|" * len(policy.roles))
    for actions, scopes in matrix(policy):
        click.echo(f"| {actions} | " + " | ".join(scopes) + " |")


# `caseledger customer show` (cli/customers.py) reads personal data as a token holder, like `events --json`.
COMMANDS = (tokens, access_events, permissions, *CUSTOMER_COMMANDS)
