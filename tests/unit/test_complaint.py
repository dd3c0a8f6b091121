"""Complaint lifecycle and escalation ladder."""

from __future__ import annotations

import uuid

import pytest

from domain.complaint import Complaint, ComplaintStatus as S
from domain.errors import InvalidValue, TransitionForbidden


@pytest.fixture
def policy(policies):
    return policies.get("sop-2025@1")


def new_complaint(policy, ctx):
    return Complaint.accept(id=uuid.uuid4(), customer_id=str(uuid.uuid4()), channel="phone", policy=policy,
                            ctx=ctx("agent-li"), description="billed twice")


def investigate(complaint, policy, ctx):
    complaint.classify(complaint_type="process", level=2, policy=policy, ctx=ctx())
    complaint.start_investigation(policy=policy, ctx=ctx())
    complaint.add_evidence(kind="bill", reference="INV-1", description="two charges", policy=policy, ctx=ctx())
    return complaint


def test_full_lifecycle_to_root_cause(policy, ctx):
    c = investigate(new_complaint(policy, ctx), policy, ctx)
    c.escalate(to_rung="team_lead", policy=policy, ctx=ctx(reason="refund over agent limit"))
    c.decide_remedy(kind="compensation", amount="50.00", details="refund", policy=policy, ctx=ctx("lead-wang"))
    c.notify_customer(channel="sms", policy=policy, ctx=ctx())
    c.record_evaluation(satisfied=True, score=5, policy=policy, ctx=ctx())
    c.archive(policy=policy, ctx=ctx())
    c.record_root_cause(category="billing-system", analysis="duplicate batch run", policy=policy, ctx=ctx())
    assert c.status == S.ARCHIVED and c.root_cause_recorded and c.rung == "team_lead"
    names = [type(e).__name__ for e in c.collect_events()]
    assert names == ["Accepted", "Classified", "InvestigationStarted", "EvidenceAdded", "Escalated",
                     "RemedyDecided", "CustomerNotified", "Evaluated", "Archived", "RootCauseRecorded"]


def test_remedy_requires_evidence(policy, ctx):
    c = new_complaint(policy, ctx)
    c.classify(complaint_type="technical", level=1, policy=policy, ctx=ctx())
    c.start_investigation(policy=policy, ctx=ctx())
    with pytest.raises(TransitionForbidden) as e:
        c.decide_remedy(kind="rectification", policy=policy, ctx=ctx())
    assert e.value.rule == "complaint.remedy_requires_evidence"


def test_escalation_climbs_one_rung_at_a_time(policy, ctx):
    c = investigate(new_complaint(policy, ctx), policy, ctx)
    with pytest.raises(TransitionForbidden) as e:
        c.escalate(to_rung="management", policy=policy, ctx=ctx(reason="angry"))
    assert e.value.rule == "complaint.escalation_ladder" and "team_lead" in str(e.value)
    c.escalate(to_rung="technical", policy=policy, ctx=ctx(reason="needs engineer"))
    with pytest.raises(TransitionForbidden):
        c.escalate(to_rung="team_lead", policy=policy, ctx=ctx(reason="sideways"))
    c.escalate(to_rung="management", policy=policy, ctx=ctx(reason="still open"))
    with pytest.raises(TransitionForbidden) as e:
        c.escalate(to_rung="management", policy=policy, ctx=ctx(reason="more"))
    assert "top of the ladder" in str(e.value)


def test_escalation_needs_reason(policy, ctx):
    c = investigate(new_complaint(policy, ctx), policy, ctx)
    with pytest.raises(TransitionForbidden) as e:
        c.escalate(to_rung="team_lead", policy=policy, ctx=ctx())
    assert e.value.rule == "complaint.escalation_reason"


def test_archive_requires_evaluation_and_root_cause_requires_archive(policy, ctx):
    c = investigate(new_complaint(policy, ctx), policy, ctx)
    with pytest.raises(TransitionForbidden) as e:
        c.record_root_cause(category="x", policy=policy, ctx=ctx())
    assert e.value.rule == "complaint.root_cause_after_closure"
    c.decide_remedy(kind="none", policy=policy, ctx=ctx(reason="unfounded: charges were correct"))
    with pytest.raises(TransitionForbidden) as e:
        c.archive(policy=policy, ctx=ctx())
    assert e.value.rule == "complaint.archive_requires_evaluation"


def test_invalid_level_and_amount(policy, ctx):
    c = new_complaint(policy, ctx)
    with pytest.raises(InvalidValue):
        c.classify(complaint_type="process", level=7, policy=policy, ctx=ctx())
    investigate(c, policy, ctx)
    with pytest.raises(InvalidValue):
        c.decide_remedy(kind="compensation", amount="-5", policy=policy, ctx=ctx())
    with pytest.raises(TransitionForbidden) as e:
        c.decide_remedy(kind="rectification", amount="5", policy=policy, ctx=ctx())
    assert e.value.rule == "complaint.amount"
