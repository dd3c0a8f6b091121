"""The outbox read model: fed from the log exactly once, the same after a rebuild, never earlier events."""

from __future__ import annotations

import pytest

from projections.runtime import ProjectionRunner
from projections.webhook_outbox import OUTBOX_TABLE, WebhookOutbox, delivery_id

pytestmark = pytest.mark.integration


def outbox_rows(runner: ProjectionRunner) -> list[tuple]:
    with runner.db.reading() as cur:
        return cur.execute(f"SELECT subscription_id, position, event_type, aggregate_id, version, delivery_id "
                           f"FROM {OUTBOX_TABLE.name} ORDER BY position, subscription_id").fetchall()


def test_outbox_in_small_batches_equals_a_rebuild_and_starts_after_the_subscription(ledger, admin, subscriptions):
    agent = lambda: admin("agent-li", "agent")
    before = ledger.register_customer(agent(), kind="individual", tier="vip", contact={"name": "甲"})
    tickets, _ = subscriptions.create(admin(), url="https://ops.example.com/a", event_types=["Ticket.*"],
                                      role="team_lead")
    everything, _ = subscriptions.create(admin(), url="https://ops.example.com/b", event_types=["*"],
                                         role="administrator", filter={"tier": ["vip"]})
    runner = ProjectionRunner(ledger, [WebhookOutbox(ledger)], batch_size=2)  # batches cut through the commands
    runner.ensure_tables()
    runner.catch_up()
    customer = ledger.register_customer(agent(), kind="individual", tier="vip", contact={"name": "乙"})
    ledger.register_customer(agent(), kind="individual", tier="general", contact={"name": "丙"})
    ticket = ledger.open_ticket(agent(), customer_id=str(customer.id), channel="phone")
    subscriptions.remove(admin(), everything.id)
    ledger.register_customer(agent(), kind="individual", tier="vip", contact={"name": "丁"})  # after the removal
    runner.catch_up()

    rows = outbox_rows(runner)
    # Hand-derived: the "*" subscription (filter tier=vip) gets the vip customer registered after it and
    # nothing else (the ticket has no tier field); the ticket subscription gets the ticket's one event.
    assert [(r[0], r[2], r[3]) for r in rows] == [(str(everything.id), "Customer.Registered", str(customer.id)),
                                                  (str(tickets.id), "Ticket.Received", str(ticket.id))]
    assert all(r[5] == delivery_id(r[0], r[1]) for r in rows)
    assert str(before.id) not in {r[3] for r in rows}  # registered before any subscription
    incremental = runner.digests()

    rebuilt = ProjectionRunner(ledger, [WebhookOutbox(ledger)], batch_size=1000)
    rebuilt.rebuild()
    assert rebuilt.digests() == incremental and outbox_rows(rebuilt) == rows
    runner.close()
    rebuilt.close()
