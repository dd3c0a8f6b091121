"""Interactions (received → registered → routed), customers, feedback and surveys."""

from __future__ import annotations

import uuid

import pytest

from domain.customer import Customer
from domain.errors import InvalidValue, TransitionForbidden
from domain.feedback import Feedback, SurveyResponse
from domain.interaction import Interaction, InteractionStatus as S


@pytest.fixture
def policy(policies):
    return policies.get("sop-2025@1")


def test_interaction_intake_sets_first_contact_agent_once(policy, ctx):
    i = Interaction.receive(id=uuid.uuid4(), channel="wechat", direction="inbound", policy=policy, ctx=ctx(),
                            content="我的宽带断了")
    with pytest.raises(TransitionForbidden) as e:
        i.route(queue="broadband", policy=policy, ctx=ctx())
    assert e.value.rule == "interaction.route_requires_registration"
    i.register(agent_id="agent-li", policy=policy, ctx=ctx())
    with pytest.raises(TransitionForbidden) as e:
        i.register(agent_id="agent-zhao", policy=policy, ctx=ctx())
    assert e.value.rule == "interaction.register_once"
    i.route(queue="broadband", policy=policy, ctx=ctx())
    i.close(resolved_on_first_contact=True, policy=policy, ctx=ctx())
    assert (i.status, i.first_contact_agent, i.resolved_on_first_contact) == (S.CLOSED, "agent-li", True)


def test_contact_with_ticket_is_not_first_contact_resolution(policy, ctx):
    i = Interaction.receive(id=uuid.uuid4(), channel="phone", direction="inbound", policy=policy, ctx=ctx())
    i.register(agent_id="agent-li", policy=policy, ctx=ctx())
    i.route(queue="q", policy=policy, ctx=ctx())
    i.open_ticket(ticket_id="t-1", policy=policy, ctx=ctx())
    with pytest.raises(TransitionForbidden):
        i.close(resolved_on_first_contact=True, policy=policy, ctx=ctx())
    i.close(resolved_on_first_contact=False, policy=policy, ctx=ctx())


def test_customer_personal_data_is_kept_apart(policy, ctx):
    cid = uuid.uuid4()
    c = Customer.register(id=cid, kind="individual", tier="vip", contact={"name": "张三", "phone": "13812345678"},
                          consents={"marketing": False}, policy=policy, ctx=ctx())
    event = c.collect_events()[0]
    assert event.personal == {"subject": str(cid), "fields": {"name": "张三", "phone": "13812345678"}}
    assert "张三" not in repr({k: v for k, v in vars(event).items() if k != "personal"})
    with pytest.raises(InvalidValue):
        c.update_contact(contact={"shoe_size": "42"}, policy=policy, ctx=ctx())
    with pytest.raises(TransitionForbidden):
        c.change_tier(tier="vip", policy=policy, ctx=ctx())
    c.change_tier(tier="general", policy=policy, ctx=ctx(reason="annual review"))
    assert c.tier == "general"


def test_feedback_flow_and_escalation(policy, ctx):
    f = Feedback.submit(id=uuid.uuid4(), kind="suggestion", customer_id="c1", channel="app", policy=policy, ctx=ctx())
    with pytest.raises(TransitionForbidden):
        f.reply(policy=policy, ctx=ctx())
    f.respond(policy=policy, ctx=ctx())
    f.reply(policy=policy, ctx=ctx(), note="thanks, forwarded")
    with pytest.raises(TransitionForbidden) as e:
        f.escalate_to_complaint(complaint_id="x", policy=policy, ctx=ctx())
    assert e.value.rule == "feedback.complaint_kind"


@pytest.mark.parametrize("csat,nps,ok", [(5, 10, True), (1, 0, True), (None, 7, True), (0, None, False),
                                         (6, None, False), (None, 11, False), (None, None, False), (True, None, False)])
def test_survey_scales_come_from_policy(policy, ctx, csat, nps, ok):
    def answer():
        return SurveyResponse.answer(id=uuid.uuid4(), ticket_id="t", customer_id="c", csat=csat, nps=nps,
                                     policy=policy, ctx=ctx())

    if ok:
        assert answer().csat == csat
    else:
        with pytest.raises((InvalidValue, TransitionForbidden)):
            answer()
