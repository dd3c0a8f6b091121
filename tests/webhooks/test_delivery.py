"""Delivering webhooks to a receiver on 127.0.0.1 that fails, times out and recovers (both backends)."""

from __future__ import annotations

import json

import pytest

from services.webhooks import SIGNATURE_HEADER, sign, verify_signature

pytestmark = pytest.mark.integration
CONTACT = {"name": "赵六", "phone": "13811112222"}


def register_customer(ledger, admin, tier: str = "vip"):
    return ledger.register_customer(admin("agent-li", "agent"), kind="individual", tier=tier, contact=dict(CONTACT))


def test_a_failing_then_slow_receiver_gets_the_event_once_it_recovers(ledger, admin, subscriptions, worker, receiver,
                                                                      fake_time):
    subscription, secret = subscriptions.create(admin(), url=receiver.url, event_types=["Customer.*"], role="team_lead")
    customer = register_customer(ledger, admin)
    receiver.script = [500, "slow"]  # then 200

    assert worker.run_once()["failed"] == 1  # 500
    [row] = worker.deliveries()
    assert (row["status"], row["failures"], row["last_status"]) == ("pending", 1, 500)
    assert row["next_attempt_ms"] == int(fake_time.now * 1000) + 1000  # base delay 1 s
    assert worker.run_once() == {"delivered": 0, "failed": 0, "dead": 0, "withheld": 0, "cancelled": 0}  # not due

    fake_time.advance(1.0)
    assert worker.run_once()["failed"] == 1  # timed out
    [row] = worker.deliveries()
    assert row["failures"] == 2 and row["last_status"] is None and "timed out" in row["last_error"]
    assert row["next_attempt_ms"] == int(fake_time.now * 1000) + 2000  # doubled

    fake_time.advance(2.0)
    assert worker.run_once()["delivered"] == 1
    [row] = worker.deliveries()
    assert (row["status"], row["failures"], row["last_status"]) == ("delivered", 2, 200)
    assert worker.run_once()["delivered"] == 0  # delivered once, not again

    assert len(receiver.requests) == 3
    ids = {headers["Caseledger-Delivery"] for headers, _ in receiver.requests}
    assert ids == {row["delivery_id"]} == {headers["Idempotency-Key"] for headers, _ in receiver.requests}
    headers, body = receiver.requests[-1]
    assert verify_signature(secret, headers[SIGNATURE_HEADER], body, now=fake_time.now)
    payload = json.loads(body)
    assert payload["event_type"] == "Customer.Registered" and payload["subscription_id"] == str(subscription.id)
    assert payload["event"]["aggregate_id"] == str(customer.id) and payload["event"]["data"]["tier"] == "vip"


def test_personal_data_is_masked_for_the_subscribers_role(ledger, admin, subscriptions, worker, receiver):
    subscriptions.create(admin(), url=receiver.url, event_types=["Customer.Registered"], role="complaint_manager")
    register_customer(ledger, admin)
    assert worker.run_once()["delivered"] == 1
    [(_, body)] = receiver.requests
    personal = json.loads(body)["event"]["personal"]
    assert personal["fields"] == {"name": "赵*", "phone": "138****2222"}
    text = body.decode()
    assert "赵六" not in text and "13811112222" not in text


def test_a_role_that_may_not_read_the_records_gets_nothing(ledger, admin, subscriptions, worker, receiver):
    # An agent reads only its own tickets: a standing subscription in that role is withheld every ticket.
    subscriptions.create(admin(), url=receiver.url, event_types=["Ticket.*"], role="agent")
    customer = register_customer(ledger, admin)
    ledger.open_ticket(admin("agent-li", "agent"), customer_id=str(customer.id), channel="phone")
    assert worker.run_once()["withheld"] == 1
    [row] = worker.deliveries()
    assert row["status"] == "withheld" and "agent role may not read ticket" in row["last_error"]
    assert receiver.requests == []


def test_dead_letters_after_the_last_attempt_and_replay(ledger, admin, subscriptions, worker, receiver, fake_time):
    subscriptions.create(admin(), url=receiver.url, event_types=["*"], role="administrator")
    register_customer(ledger, admin)
    receiver.script = [503, 503, 503]
    outcomes = []
    for wait in (0.0, 1.0, 2.0):  # attempts 1..3 (max_attempts 3), each when it is due
        fake_time.advance(wait)
        outcomes.append(worker.run_once())
    assert [o["failed"] for o in outcomes] == [1, 1, 0] and outcomes[-1]["dead"] == 1
    [dead] = worker.deliveries(status="dead")
    assert dead["failures"] == 3 and dead["last_status"] == 503
    fake_time.advance(3600)
    assert worker.run_once()["delivered"] == 0 and len(receiver.requests) == 3  # the dead stay dead

    replayed, done = worker.replay(dead["delivery_id"])
    assert done and replayed["status"] == "pending"
    assert worker.run_once()["delivered"] == 1
    assert worker.deliveries(status="dead") == []
    assert len(receiver.requests) == 4
    assert len({h["Caseledger-Delivery"] for h, _ in receiver.requests}) == 1


def test_removed_subscriptions_are_cancelled_and_filters_apply(ledger, admin, subscriptions, worker, receiver):
    vip_only, _ = subscriptions.create(admin(), url=receiver.url, event_types=["Customer.Registered"],
                                       role="team_lead", filter={"tier": ["vip"]})
    register_customer(ledger, admin, tier="general")
    vip = register_customer(ledger, admin, tier="vip")
    removed, _ = subscriptions.create(admin(), url=receiver.url, event_types=["Customer.*"], role="team_lead")
    register_customer(ledger, admin, tier="vip")
    subscriptions.remove(admin(), removed.id)
    counts = worker.run_once()
    assert counts["delivered"] == 2 and counts["cancelled"] == 1
    delivered = [json.loads(body)["event"]["aggregate_id"] for _, body in receiver.requests]
    assert str(vip.id) in delivered and len(delivered) == 2
    assert {r["subscription_id"] for r in worker.deliveries(status="delivered")} == {str(vip_only.id)}


def test_signatures_bind_body_timestamp_and_secret():
    body, secret, now = b'{"a":1}', "whsec_test", 1_700_000_000
    header = sign(secret, now, body)
    assert header.startswith(f"t={now},v1=") and len(header.rpartition("v1=")[2]) == 64
    assert verify_signature(secret, header, body, now=now + 10)
    assert not verify_signature(secret, header, b'{"a":2}', now=now)  # body changed
    assert not verify_signature("whsec_other", header, body, now=now)  # another secret
    assert not verify_signature(secret, header, body, now=now + 301)  # replayed too late
    assert not verify_signature(secret, header.replace(f"t={now}", f"t={now + 5}"), body, now=now)  # time changed
    assert not verify_signature(secret, None, body, now=now) and not verify_signature(secret, "v1=x", body, now=now)


def test_personal_data_erased_after_queuing_is_not_sent(ledger, admin, subscriptions, worker, receiver):
    subscriptions.create(admin(), url=receiver.url, event_types=["Customer.Registered"], role="administrator")
    customer = register_customer(ledger, admin)
    worker.refresh()  # queued and enrolled while the data was there
    ledger.subject_keys.destroy(str(customer.id), disposition_id="test", destroyed_at="2026-12-01T00:00:00+00:00")
    assert worker.run_once()["delivered"] == 1
    [(_, body)] = receiver.requests
    personal = json.loads(body)["event"]["personal"]
    assert personal["destroyed"] is True and set(personal["fields"].values()) == {None}
