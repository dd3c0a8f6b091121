"""rules.survey_independence (issue 19) on every way in over HTTP, both backends: the old ``POST
/surveys`` of a ticket and a complaint's ``record-evaluation`` refuse the person who handled the case,
naming the rule and the policy's clause; someone else may enter the customer's answer.

Business time is in 2026, so new cases are pinned to sop-2025@2, the version that states the rule."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

T2026 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=8)))


@pytest.fixture
def clock(clock):
    """The suite's business clock (a minute per call), started in 2026."""
    clock.now = T2026
    return clock


def step(api, path: str, as_: str, expect: int = 200, **body):
    response = api.post(path, as_=as_, json=body)
    assert response.status_code == expect, (path, response.json)
    return response


def test_the_handler_of_a_ticket_may_not_enter_its_survey_through_post_surveys(api, customer_id, ledger):
    ticket = step(api, "/tickets", as_="agent2", expect=201, customer_id=customer_id, channel="phone", summary="断网")
    assert ticket.json["policy_ref"] == "sop-2025@2"
    t = f"/tickets/{ticket.json['id']}"
    step(api, f"{t}/classify", as_="lead", priority="normal", complexity="general", high_risk=False)
    step(api, f"{t}/assign", as_="lead", handler="agent-zhao", team="hotline")
    step(api, f"{t}/start-work", as_="agent2")
    step(api, f"{t}/resolve", as_="agent2", resolution="重启光猫")
    step(api, f"{t}/feed-back-result", as_="agent2", channel="sms")

    own = api.post("/surveys", as_="agent2", json={"ticket_id": ticket.json["id"], "csat": 5, "nps": 10})
    assert own.status_code in (409, 422), own.json
    assert own.json["rule"] == "survey.not_by_handler"
    assert own.json["clause"] == ledger.policies.get("sop-2025@2").clause("survey_independence") == "000 §4.5.2"

    other = api.post("/surveys", as_="agent", json={"ticket_id": ticket.json["id"], "csat": 4, "nps": 8})
    assert other.status_code == 201, other.json
    assert (other.json["ticket_id"], other.json["csat"], other.json["nps"]) == (ticket.json["id"], 4, 8)
    again = api.post("/surveys", as_="agent", json={"ticket_id": ticket.json["id"], "csat": 1})
    assert again.status_code == 409  # one survey per ticket, as before


def test_a_complaints_handler_may_not_record_the_customers_evaluation(api, customer_id):
    created = step(api, "/complaints", as_="cm", expect=201, customer_id=customer_id, channel="phone",
                   description="多扣费")
    assert created.json["handler"] == "cm-zhou" and created.json["policy_ref"] == "sop-2025@2"
    c = f"/complaints/{created.json['id']}"
    step(api, f"{c}/classify", as_="cm", complaint_type="process", level=2)
    step(api, f"{c}/start-investigation", as_="cm")
    step(api, f"{c}/add-evidence", as_="cm", kind="bill", reference="INV-9")
    step(api, f"{c}/decide-remedy", as_="cm", kind="compensation", amount="20.00", details="退费")
    step(api, f"{c}/notify-customer", as_="cm", channel="phone")

    own = api.post(f"{c}/record-evaluation", as_="cm", json={"satisfied": True, "score": 5})
    assert own.status_code in (409, 422), own.json
    assert (own.json["rule"], own.json["clause"]) == ("survey.not_by_handler", "000 §4.5.2")
    assert api.get(c, as_="cm").json["status"] == "notified"  # nothing was recorded

    # Once the complaint is someone else's, cm-zhou no longer handles it and may key in the answer.
    step(api, f"{c}/reassign", as_="cm", handler="cm-sun", reason="cm-zhou takes the evaluation call")
    evaluated = step(api, f"{c}/record-evaluation", as_="cm", satisfied=False, score=2)
    assert evaluated.json["status"] == "evaluated" and evaluated.json["satisfied"] is False
