"""``caseledger webhooks deliver|list|dead-letters|replay``: the webhook worker and its dead-letter list.

``deliver`` is a long-running process of its own (the Procfile's ``webhooks``, compose's
``webhooks`` service) rather than a scheduled job: deliveries should leave within seconds of
the event, and a scheduler job records a ``JobRun`` in the audit log on every run — one every few
seconds would bury the jobs that matter. It holds no lock: several workers may run, each delivery
is claimed by one (``services.webhook_delivery``).
"""

from __future__ import annotations

import json
import signal
import threading

import click

from cli.context import open_ledger
from cli.identity import acting
from domain.permissions import AccessPolicy
from ledger.structured_logs import configure
from services.webhook_delivery import STATUSES, RetryPolicy, WebhookDelivery


@click.group()
def webhooks() -> None:
    """Webhook deliveries to ops apps (subscriptions are managed over the API: /webhooks/subscriptions)."""


@webhooks.command()
@click.option("--poll", "poll_seconds", default=1.0, show_default=True, help="Seconds between passes when idle.")
@click.option("--max-attempts", default=RetryPolicy.max_attempts, show_default=True,
              help="Failed attempts before a delivery goes to the dead-letter list.")
@click.option("--base-delay", default=RetryPolicy.base_delay, show_default=True,
              help="Seconds before the first retry; doubled after each failure.")
@click.option("--max-delay", default=RetryPolicy.max_delay, show_default=True, help="Longest wait between retries.")
@click.option("--timeout", default=RetryPolicy.timeout, show_default=True, help="Seconds a receiver has to answer.")
@click.option("--once", is_flag=True, help="One pass, then exit (prints its counts).")
def deliver(poll_seconds: float, max_attempts: int, base_delay: float, max_delay: float, timeout: float,
            once: bool) -> None:
    """Deliver the webhook outbox until Ctrl-C / SIGTERM: signed POSTs, retries with backoff, dead letters."""
    configure("webhooks")
    retry = RetryPolicy(max_attempts=max_attempts, base_delay=base_delay, max_delay=max_delay, timeout=timeout)
    ledger = open_ledger()
    worker = WebhookDelivery(ledger, AccessPolicy.load(), retry=retry)
    stop = threading.Event()
    if not once:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.is_set():
            counts = worker.run_once()
            if once:
                click.echo(json.dumps(counts))
                return
            if not any(counts.values()):
                stop.wait(poll_seconds)
    finally:
        worker.close()
        ledger.close()


@webhooks.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only deliveries in this state.")
@click.option("--limit", default=100, show_default=True)
def list_deliveries(status: str | None, limit: int) -> None:
    """Deliveries in log order, as JSON lines (administrators: webhooks.manage)."""
    who = acting("webhooks.manage")
    worker = WebhookDelivery(who.ledger, who.access)
    try:
        worker.refresh()
        for row in worker.deliveries(status=status, limit=limit):
            click.echo(json.dumps(row, ensure_ascii=False))
    finally:
        worker.close()


@webhooks.command("dead-letters")
@click.option("--limit", default=100, show_default=True)
@click.pass_context
def dead_letters(ctx: click.Context, limit: int) -> None:
    """The deliveries that failed every attempt (replay them with 'caseledger webhooks replay ID')."""
    ctx.invoke(list_deliveries, status="dead", limit=limit)


@webhooks.command()
@click.argument("delivery_id")
def replay(delivery_id: str) -> None:
    """Send a dead (or withheld) delivery again: pending, due now."""
    who = acting("webhooks.manage")
    worker = WebhookDelivery(who.ledger, who.access)
    try:
        row, replayed = worker.replay(delivery_id)
    finally:
        worker.close()
    if row is None:
        raise click.ClickException(f"no webhook delivery {delivery_id}")
    if not replayed:
        raise click.ClickException(f"delivery {delivery_id} is {row['status']}: only dead or withheld ones are replayed")
    click.echo(json.dumps(row, ensure_ascii=False))


COMMANDS = (webhooks,)
