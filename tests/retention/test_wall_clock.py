"""Retention steps judge due dates by the wall clock, never by the business time a command carries.

A customer registered in March 2026, whose one contact closed that month: every record of theirs is
due in 2029. Steps dated 2032 are refused on the real clock (today is before 2029), naming the due
date, and allowed once the wall clock reads 2032.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from domain.context import Context
from domain.errors import TransitionForbidden
from services.retention import build_retention

CST = timezone(timedelta(hours=8))
REGISTERED = datetime(2026, 3, 2, 9, 0, tzinfo=CST)
CLOSED = datetime(2026, 3, 31, 15, 0, tzinfo=CST)
LATER = datetime(2032, 1, 5, 10, 0, tzinfo=CST)


def at(moment: datetime, actor: str, role: str) -> Context:
    return Context(actor, role, moment, uuid.uuid4().hex)


@pytest.fixture
def customer(ledger) -> str:
    customer = ledger.register_customer(at(REGISTERED, "agent-li", "agent"), kind="individual", tier="general",
                                        contact={"name": "司马光", "phone": "13900002222"})
    contact = ledger.receive_interaction(at(REGISTERED + timedelta(minutes=1), "agent-li", "agent"), channel="phone",
                                         direction="inbound", customer_id=str(customer.id), agent_id="agent-li",
                                         queue="billing")
    ledger.act("interaction", contact.id, "close", at(CLOSED, "agent-li", "agent"), {"resolved_on_first_contact": True})
    return str(customer.id)


@pytest.fixture
def service(ledger, env):
    retention = build_retention(ledger, env)
    yield retention
    retention.close()


def refused_until_2029(step) -> None:  # noqa: ANN001
    with pytest.raises(TransitionForbidden) as refused:
        step()
    assert refused.value.rule == "disposition.not_disposable"
    assert "kept until 2029-" in str(refused.value)


def test_a_later_business_time_does_not_make_data_due(ledger, service, customer, wall_clock):
    assert {r["due_at"][:4] for r in service.records(subject=customer)} == {"2029"}
    propose = lambda: service.propose(at(LATER, "records-chen", "records_manager"), customer)  # noqa: E731
    refused_until_2029(propose)  # the real clock: December 2026

    wall_clock.now = LATER + timedelta(minutes=1)
    d = str(propose().id)
    wall_clock.now = None
    approve = lambda: service.approve(at(LATER + timedelta(minutes=5), "compliance-qian", "compliance_officer"), d)  # noqa: E731
    refused_until_2029(approve)

    wall_clock.now = LATER + timedelta(minutes=6)
    approve()
    wall_clock.now = None
    execute = lambda: service.execute(at(LATER + timedelta(minutes=10), "compliance-qian", "compliance_officer"), d)  # noqa: E731
    refused_until_2029(execute)
    assert ledger.contact_details(customer)["name"] == "司马光"  # nothing destroyed

    wall_clock.now = LATER + timedelta(minutes=11)
    certificate = execute().certificate
    assert certificate["destroyed_at"] == (LATER + timedelta(minutes=10)).isoformat()
    assert certificate["assessed_at"] == (LATER + timedelta(minutes=11)).isoformat()
    assert ledger.contact_details(customer)["name"] is None


def test_a_step_dated_before_the_due_date_is_refused_whatever_the_wall_clock(service, customer, wall_clock):
    """The certificate and the events carry the business time: it may not precede a due date either."""
    wall_clock.now = LATER
    with pytest.raises(TransitionForbidden) as refused:
        service.propose(at(datetime(2029, 1, 5, tzinfo=CST), "records-chen", "records_manager"), customer)
    assert refused.value.rule == "disposition.before_due" and "2029-04-0" in str(refused.value)
