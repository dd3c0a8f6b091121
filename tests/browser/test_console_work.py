"""The console's work pages in a real headless Chromium: need-to-know masking for agents (the API's
decision), a finding's rectification with a four-eyes close by two sessions, legal holds placed and
released from the retention page, and the work queues and incident list paged by "next" links.
Every request stays on 127.0.0.1 and no page logs an error (fixtures in conftest.py)."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect

from domain.context import Context
from domain.findings import Finding, Suspicion
from services.incidents import report_incident

CONTACT_OWN = {"name": "赵六", "phone": "13811112222"}
CONTACT_OTHER = {"name": "钱七", "phone": "13933334444"}
REASON = "customer called back about ticket"


def _ctx(clock, actor, role, reason=None):
    return Context(actor_id=actor, actor_role=role, occurred_at=clock(), request_id=uuid.uuid4().hex, reason=reason)


def _api_contact(app, tokens, customer):
    """What the API shows the agent of this customer's contact, given the same reason."""
    response = app.test_client().get(f"/customers/{customer}", headers={
        "Authorization": f"Bearer {tokens[1]['agent']}", "X-Access-Reason": REASON})
    assert response.status_code == 200, response.json
    return response.json["contact"]


def test_an_agent_sees_unmasked_only_the_customers_of_their_own_cases(shoot, app, ledger, clock, session, tokens,
                                                                        watched):
    own = str(ledger.register_customer(_ctx(clock, "agent-li", "agent"), kind="individual", tier="vip",
                                       contact=CONTACT_OWN).id)
    ledger.open_ticket(_ctx(clock, "agent-li", "agent"), customer_id=own, channel="phone")  # agent-li owns it
    other = str(ledger.register_customer(_ctx(clock, "agent-zhao", "agent"), kind="individual", tier="general",
                                         contact=CONTACT_OTHER).id)  # another agent's customer, no case of agent-li
    page = session("agent")
    for customer, contact in ((own, CONTACT_OWN), (other, CONTACT_OTHER)):
        page.goto(f"/console/cases/customer/{customer}")
        page.get_by_label(re.compile("Reason for reading personal data")).fill(REASON)
        page.get_by_role("button", name="Show unmasked").click()
        shown = {name: page.locator(f'#contact [data-field="{name}"]').inner_text() for name in contact}
        if customer == own:
            assert shown == contact
            expect(page.locator("#withheld")).to_have_count(0)
        else:  # a reason alone is not enough: masked as by default, and the page says why
            assert shown == {"name": "钱*", "phone": "139****4444"}
            expect(page.locator("#withheld")).to_contain_text("cases you own or handle")
            shoot(page, "need-to-know-withheld")
    access_log = app.extensions["caseledger.access_log"]
    assert [(e["actor_id"], e["reason"]) for e in access_log.entries(subject=own)[0]] == [("agent-li", REASON)]
    assert access_log.entries(subject=other)[0] == []  # nothing disclosed, nothing recorded
    # Exactly the API's decision for the same caller and reason.
    assert _api_contact(app, tokens, own) == CONTACT_OWN
    assert _api_contact(app, tokens, other) == {"name": "钱*", "phone": "139****4444"}
    assert watched.errors == []


def _one_finding(ledger, clock) -> str:
    """One open finding, recorded as the compliance audit records one: a ticket's first response missed."""
    customer = ledger.register_customer(_ctx(clock, "agent-li", "agent"), kind="individual", tier="general",
                                        contact=CONTACT_OWN)
    ticket = ledger.open_ticket(_ctx(clock, "agent-li", "agent"), customer_id=str(customer.id), channel="phone")
    clock.advance(hours=1)
    ctx = _ctx(clock, "scheduler", "service")
    policy = ledger.policy_of(ticket)
    suspicion = Suspicion(rule="sla_breach", subject_kind="ticket", subject_id=str(ticket.id), policy_ref=policy.ref,
                          due_at=ctx.occurred_at, facts={"clock": "first_response"})
    ledger.record(Finding.record(suspicion=suspicion, policy=policy, ctx=ctx))
    return str(suspicion.finding_id)


def test_a_finding_is_rectified_and_closed_by_a_second_person(shoot, app, ledger, clock, session, watched):
    finding = _one_finding(ledger, clock)
    owner = session("compliance")
    owner.goto("/console/")
    owner.get_by_role("navigation", name="Main").get_by_role("link", name="Findings").click()
    owner.locator(f'#findings a[href$="/console/findings/{finding}"]').click()
    expect(owner.locator("#f-status")).to_have_text("open")
    owner.get_by_label("Owner", exact=True).fill("compliance-xu")
    owner.get_by_label("Severity", exact=True).select_option("minor")
    owner.get_by_label("Planned corrective action").fill("coach the hotline on first responses")
    owner.get_by_role("button", name="Assign").click()
    expect(owner.locator("#f-status")).to_have_text("assigned")
    owner.get_by_label("Corrective action taken").fill("coached the hotline team")
    owner.get_by_label(re.compile("Evidence")).fill("training-record-0917\nrecording-4411")
    owner.get_by_role("button", name="Rectify").click()
    expect(owner.locator("#f-status")).to_have_text("rectified")
    expect(owner.locator("#evidence li")).to_have_text(["training-record-0917", "recording-4411"])
    finding_url = owner.url

    owner.get_by_role("button", name="Close").click()  # the owner may not verify their own work
    expect(owner.locator("#rule")).to_have_text("finding.close_four_eyes")
    expect(owner.locator("#clause")).to_contain_text("000 §6.2 item 5")
    shoot(owner, "finding-four-eyes-refused")
    assert ledger.get("finding", finding).status == "rectified"

    second = session("compliance2")  # the second pair of eyes signs in separately
    second.goto(finding_url)
    second.get_by_label("How the rectification was verified").fill("checked the training record")
    second.get_by_role("button", name="Close").click()
    expect(second.locator("#f-status")).to_have_text("closed")
    expect(second.locator("#f-closed-by")).to_have_text("compliance-qian")
    shoot(second, "finding-closed")
    second.get_by_label("Reason").fill("the same miss happened again the next week")
    second.get_by_role("button", name="Reopen").click()
    expect(second.locator("#f-status")).to_have_text("reopened")
    stored = ledger.get("finding", finding)
    assert (stored.status, stored.owner, stored.rectified_by, stored.reopen_count) == (
        "reopened", "compliance-xu", "compliance-xu", 1)
    # The refused load (409) is the one error the browser logs.
    assert [e for e in watched.errors if "409" not in e] == []


def test_a_legal_hold_is_placed_and_released_from_the_retention_page(shoot, app, ledger, clock, session, watched):
    customer = str(ledger.register_customer(_ctx(clock, "agent-li", "agent"), kind="individual", tier="general",
                                            contact=CONTACT_OWN).id)
    auditor = session("auditor")  # reads holds; the matrix grants no holds.place
    auditor.goto("/console/retention")
    expect(auditor.locator("#place-hold")).to_have_count(0)

    records = session("records")
    records.goto("/console/retention")
    records.get_by_label("Record kind").select_option("customer")
    records.get_by_label("Record id").fill(customer)
    records.get_by_label("Authority that ordered it").fill("court order 2025-17")
    records.get_by_label("Reason", exact=True).fill("litigation about a billing dispute")
    records.get_by_role("button", name="Place legal hold").click()
    row = records.locator("#holds tbody tr").filter(has_text="court order 2025-17")
    expect(row.locator(".hold-status")).to_have_text("active")
    hold_id = row.get_attribute("data-hold")
    assert ledger.get("hold", hold_id).subject == customer
    shoot(records, "retention-holds")

    auditor.reload()
    expect(auditor.locator(f'#holds tr[data-hold="{hold_id}"] .hold-status')).to_have_text("active")
    expect(auditor.get_by_role("button", name=re.compile("Release hold"))).to_have_count(0)

    row.get_by_label(re.compile("Reason for releasing")).fill("the court lifted the order")
    row.get_by_role("button", name=re.compile("Release hold")).click()
    expect(records.locator(f'#holds tr[data-hold="{hold_id}"] .hold-status')).to_have_text("released")
    assert ledger.get("hold", hold_id).status == "released"
    assert watched.errors == []


def test_work_queues_and_incidents_are_paged_by_next_links(shoot, app, ledger, clock, session, watched):
    contacts = [str(ledger.receive_interaction(_ctx(clock, "agent-li", "agent"), channel="phone", direction="inbound",
                                              content=f"caller {n} left no name").id)
                for n in range(3)]  # no agent_id: received, nobody registered them yet
    for kind, level in (("service_fault", "L2"), ("data_leak", "L1"), ("security_incident", "L3")):
        report_incident(ledger, _ctx(clock, "lead-wang", "team_lead"), incident_kind=kind, level=level)
    lead = session("lead")
    lead.goto("/console/")
    lead.get_by_role("navigation", name="Main").get_by_role("link", name="Work queues").click()
    expect(lead.locator("#work tbody tr")).to_have_count(3)
    lead.goto("/console/work?queue=unregistered_contacts&limit=2")
    first = [lead.locator("#work tbody tr").nth(i).get_by_role("link").get_attribute("href") for i in range(2)]
    lead.get_by_role("link", name="Next page").click()
    expect(lead.locator("#work tbody tr")).to_have_count(1)
    expect(lead.get_by_role("link", name="Next page")).to_have_count(0)
    last = lead.locator("#work tbody tr").first.get_by_role("link").get_attribute("href")
    assert [h.rsplit("/", 1)[1] for h in (*first, last)] == contacts  # oldest first, each once

    lead.get_by_role("navigation", name="Main").get_by_role("link", name="Incidents").click()
    expect(lead.locator("#incidents tbody tr")).to_have_count(3)
    lead.goto("/console/incidents?limit=2")
    expect(lead.locator("#incidents tbody tr")).to_have_count(2)
    lead.get_by_role("link", name="Next page").click()
    expect(lead.locator("#incidents tbody tr")).to_have_count(1)
    expect(lead.locator("#incidents tbody tr")).to_contain_text("security_incident")
    lead.get_by_label("Kind").select_option("data_leak")
    lead.get_by_role("button", name="Show").click()
    expect(lead.locator("#incidents tbody tr")).to_have_count(1)
    expect(lead.locator("#incidents tbody tr")).to_contain_text("L1")
    shoot(lead, "incidents")

    agent = session("agent")  # scope own: the complaints queue lists only the agent's own
    agent.goto("/console/work?queue=complaints&owner=lead-wang")
    expect(agent.locator("#note")).to_contain_text("only its own")
    expect(agent.locator("#owner")).to_have_value("agent-li")
    expect(agent.get_by_role("navigation", name="Main").get_by_role("link", name="Incidents")).to_have_count(0)
    assert watched.errors == []
