"""``caseledger customer show ID``: one customer's profile and contact details, from the shell.

The reader acts as a token holder (``cli.identity``) with ``customer.read``. Contact details are
masked unless ``--reason`` is given and the role holds ``personal.unmask``; an agent (scope ``own``)
sees them unmasked only for a customer of a case they own or are assigned (need-to-know, 003 §6.3),
exactly as ``GET /customers/{id}`` with ``X-Access-Reason`` decides. What is shown unmasked is
written to the security audit log.
"""

from __future__ import annotations

import json

import click

from cli.errors import OneLineError
from cli.identity import acting
from ledger.errors import NotFound


@click.group()
def customer() -> None:
    """Customer records (customer.read)."""


@customer.command("show")
@click.argument("customer_id")
@click.option("--reason", help="Show the contact details unmasked, for this reason (personal.unmask; an agent only "
                               "for customers of their own cases; recorded in the security audit log).")
def customer_show(customer_id: str, reason: str | None) -> None:
    """One customer as JSON: kind, tier, status, version and contact details (masked by default)."""
    who = acting("customer.read")
    disclosure = who.disclosure(reason)
    try:
        record = who.ledger.get("customer", customer_id)
        contact = who.ledger.contact_details(record.id)
    except (NotFound, ValueError) as e:  # an unknown id, or not an id at all
        raise OneLineError(f"no customer {customer_id} ({e})") from None
    shown = {"id": str(record.id), "kind": record.kind, "tier": record.tier, "status": record.status,
             "version": record.version, "contact": disclosure.fields(str(record.id), contact)}
    who.record(disclosure, f"customer show {record.id}")
    click.echo(json.dumps(shown, ensure_ascii=False))


COMMANDS = (customer,)
