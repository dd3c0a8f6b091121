"""Fixtures for the read-model tests: a runner on the ledger's database, explicit business times,
and the API fixtures of tests/api (loaded by path: the test folders are not packages)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from read_model_fixtures import T0, act, at, runner_fixture  # noqa: F401 - ``at`` is a fixture, found by name

_spec = importlib.util.spec_from_file_location("api_test_fixtures", Path(__file__).parents[1] / "api" / "conftest.py")
_api_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_api_fixtures)
tokens, app, api, Api = _api_fixtures.tokens, _api_fixtures.app, _api_fixtures.api, _api_fixtures.Api

runner = runner_fixture(batch_size=7)  # small batches: many transactions even on small data sets


@pytest.fixture
def scenario(ledger, at) -> dict[str, str]:
    """A small, fully specified data set; the KPI test's comments compute its numbers by hand.

    Minutes after T0 (Mon 2025-09-01 09:00 +08:00); 900 minutes is midnight, so t2's late
    events (≥ 3000 min) fall on Wed 2025-09-03.
    """
    lead, cm = ("lead-wang", "team_lead"), ("cm-zhou", "complaint_manager")
    c1 = str(ledger.register_customer(at(0), kind="individual", tier="vip", contact={"name": "张三"}).id)
    c2 = str(ledger.register_customer(at(1), kind="enterprise", tier="general", contact={"phone": "13800000000"}).id)
    i1 = ledger.receive_interaction(at(2), channel="phone", direction="inbound", customer_id=c1, agent_id="agent-li",
                                    queue="broadband", content="网络断了")
    i2 = ledger.receive_interaction(at(3), channel="phone", direction="inbound", customer_id=c2, agent_id="agent-li",
                                    queue="broadband")
    i3 = ledger.receive_interaction(at(4), channel="web", direction="inbound", customer_id=c1)
    i4 = ledger.receive_interaction(at(5), channel="phone", direction="inbound", customer_id=c1, agent_id="agent-li",
                                    queue="mobile")
    t1 = str(ledger.open_ticket(at(6), customer_id=c1, channel="phone", interaction_id=str(i4.id)).id)
    act(ledger, "interaction", i1.id, "close", at(10), resolved_on_first_contact=True)
    act(ledger, "interaction", i2.id, "close", at(11), resolved_on_first_contact=False)
    act(ledger, "interaction", i4.id, "close", at(12), resolved_on_first_contact=False)
    # t1: normal/general, no review; first response after 14 min; resolved after 60 min; closed.
    act(ledger, "ticket", t1, "classify", at(7), priority="normal", complexity="general", high_risk=False)
    act(ledger, "ticket", t1, "assign", at(8), handler="agent-zhao", team="broadband")
    act(ledger, "ticket", t1, "respond_first", at(20, "agent-zhao"))
    act(ledger, "ticket", t1, "start_work", at(21, "agent-zhao"))
    act(ledger, "ticket", t1, "resolve", at(66, "agent-zhao"), resolution="换了光猫")
    act(ledger, "ticket", t1, "feed_back_result", at(70, "agent-zhao"), channel="phone")
    act(ledger, "ticket", t1, "record_acceptance", at(80, "agent-zhao"), accepted=True)
    act(ledger, "ticket", t1, "close", at(90, "agent-zhao"))
    ledger.answer_survey(at(100), ticket_id=t1, csat=5, nps=10)
    # t2: urgent/complex (second review), first response after 30 min (late), resolved after review
    # at 3030 (3000 min after receipt: late), closed, surveyed, reopened.
    t2 = str(ledger.open_ticket(at(30), customer_id=c2, channel="web").id)
    act(ledger, "ticket", t2, "classify", at(31), priority="urgent", complexity="complex", high_risk=False)
    act(ledger, "ticket", t2, "assign", at(32), handler="agent-zhao", team="mobile")
    act(ledger, "ticket", t2, "respond_first", at(60, "agent-zhao"))
    act(ledger, "ticket", t2, "start_work", at(61, "agent-zhao"))
    act(ledger, "ticket", t2, "resolve", at(3000, "agent-zhao"))
    act(ledger, "ticket", t2, "review", at(3030, *lead), approved=True)
    act(ledger, "ticket", t2, "feed_back_result", at(3040, "agent-zhao"), channel="web")
    act(ledger, "ticket", t2, "record_acceptance", at(3050, "agent-zhao"), accepted=True)
    act(ledger, "ticket", t2, "close", at(3060, "agent-zhao"))
    ledger.answer_survey(at(3065), ticket_id=t2, csat=3, nps=6)
    act(ledger, "ticket", t2, "reopen", at(3070, *lead, reason="customer called again"))
    # complaints: k1 escalated once, k2 not.
    k1 = str(ledger.accept_complaint(at(200, *cm), customer_id=c1, channel="phone", description="态度差").id)
    act(ledger, "complaint", k1, "classify", at(201, *cm), complaint_type="technical", level=1)
    act(ledger, "complaint", k1, "start_investigation", at(202, *cm))
    act(ledger, "complaint", k1, "escalate", at(203, *cm, reason="repeat fault"), to_rung="team_lead")
    k2 = str(ledger.accept_complaint(at(210, *cm), customer_id=c2, channel="web", ticket_id=t2).id)
    return {"c1": c1, "c2": c2, "i1": str(i1.id), "i3": str(i3.id), "i4": str(i4.id), "t1": t1, "t2": t2,
            "k1": k1, "k2": k2}
