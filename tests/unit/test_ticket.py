"""Ticket lifecycle rules, each checked for the allowed path and the rule that forbids the others."""

from __future__ import annotations

import uuid

import pytest

from domain.errors import InvalidValue, PolicyError, TransitionForbidden
from domain.ticket import Ticket, TicketStatus as S


@pytest.fixture
def policy(policies):
    return policies.get("sop-2025@1")


def new_ticket(policy, ctx, owner="agent-li"):
    return Ticket.receive(id=uuid.uuid4(), customer_id=str(uuid.uuid4()), channel="phone",
                          first_contact_owner=owner, policy=policy, ctx=ctx(owner), summary="router broken")


def drive_to(ticket, target, policy, ctx, *, complexity="general", high_risk=False):
    """Walk the happy path until ``ticket.status == target``."""
    steps = [
        (S.CLASSIFIED, lambda: ticket.classify(priority="normal", complexity=complexity, high_risk=high_risk,
                                               policy=policy, ctx=ctx())),
        (S.ASSIGNED, lambda: ticket.assign(handler="agent-zhao", team="hotline", policy=policy, ctx=ctx())),
        (S.IN_PROGRESS, lambda: (ticket.respond_first(policy=policy, ctx=ctx("agent-zhao")),
                                 ticket.start_work(policy=policy, ctx=ctx("agent-zhao")))),
        (S.RESOLVED, lambda: (ticket.resolve(policy=policy, ctx=ctx("agent-zhao"), resolution="replaced"),
                              ticket.status == S.AWAITING_REVIEW
                              and ticket.review(approved=True, policy=policy, ctx=ctx("lead-wang", "team_lead")))),
        (S.FED_BACK, lambda: ticket.feed_back_result(channel="phone", policy=policy, ctx=ctx("agent-zhao"))),
        (S.ACCEPTED, lambda: ticket.record_acceptance(accepted=True, policy=policy, ctx=ctx("agent-zhao"))),
        (S.CLOSED, lambda: ticket.close(policy=policy, ctx=ctx("agent-zhao"))),
        (S.ARCHIVED, lambda: ticket.archive(policy=policy, ctx=ctx("archivist-sun", "records_manager"))),
    ]
    order = [S.RECEIVED] + [status for status, _ in steps]
    for status, step in steps:
        if ticket.status == target:
            return ticket
        if order.index(status) <= order.index(ticket.status):
            continue  # already past this step (e.g. a reopened ticket)
        step()
        assert ticket.status == status
    assert ticket.status == target
    return ticket


def test_happy_path_from_receipt_to_archive(policy, ctx):
    ticket = drive_to(new_ticket(policy, ctx), S.ARCHIVED, policy, ctx)
    assert ticket.archived_by == "archivist-sun"
    assert ticket.first_contact_owner == "agent-li"
    events = ticket.collect_events()
    assert [type(e).__name__ for e in events] == [
        "Received", "Classified", "Assigned", "FirstResponded", "WorkStarted", "Resolved", "ResultFedBack",
        "AcceptanceRecorded", "Closed", "Archived"]
    assert all(e.meta["policy"] == "sop-2025@1" and e.meta["actor_id"] for e in events)
    assert events[0].personal == {"subject": ticket.customer_id, "fields": {"summary": "router broken"}}


def test_close_requires_customer_acceptance_and_names_the_clause(policy, ctx):
    ticket = drive_to(new_ticket(policy, ctx), S.FED_BACK, policy, ctx)
    with pytest.raises(TransitionForbidden) as e:
        ticket.close(policy=policy, ctx=ctx())
    assert e.value.rule == "ticket.close_requires_acceptance"
    assert "customer acceptance" in str(e.value)
    assert e.value.clause == policy.clause("acceptance_required_to_close") and e.value.clause


def test_rejected_acceptance_goes_back_to_rework(policy, ctx):
    ticket = drive_to(new_ticket(policy, ctx), S.FED_BACK, policy, ctx)
    ticket.record_acceptance(accepted=False, comment="still broken", policy=policy, ctx=ctx())
    assert ticket.status == S.IN_PROGRESS and ticket.rework_count == 1
    ticket.resolve(policy=policy, ctx=ctx("agent-zhao"))
    assert ticket.status == S.RESOLVED


@pytest.mark.parametrize("complexity,high_risk", [("complex", False), ("major", False), ("general", True)])
def test_complex_or_high_risk_needs_a_second_person_review(policy, ctx, complexity, high_risk):
    ticket = drive_to(new_ticket(policy, ctx), S.IN_PROGRESS, policy, ctx, complexity=complexity, high_risk=high_risk)
    assert ticket.review_required
    ticket.resolve(policy=policy, ctx=ctx("agent-zhao"))
    assert ticket.status == S.AWAITING_REVIEW
    with pytest.raises(TransitionForbidden) as e:
        ticket.feed_back_result(channel="phone", policy=policy, ctx=ctx())
    assert e.value.rule == "ticket.feedback_requires_resolution"
    with pytest.raises(TransitionForbidden) as e:
        ticket.review(approved=True, policy=policy, ctx=ctx("agent-zhao"))
    assert e.value.rule == "ticket.second_person_review"
    assert e.value.clause == policy.clause("second_review")
    ticket.review(approved=False, note="check the cable", policy=policy, ctx=ctx("lead-wang", "team_lead"))
    assert ticket.status == S.IN_PROGRESS


def test_general_ticket_skips_review(policy, ctx):
    ticket = drive_to(new_ticket(policy, ctx), S.IN_PROGRESS, policy, ctx)
    assert not ticket.review_required
    ticket.resolve(policy=policy, ctx=ctx("agent-zhao"))
    assert ticket.status == S.RESOLVED


def test_first_contact_owner_never_changes_on_handover(policy, ctx):
    ticket = drive_to(new_ticket(policy, ctx, owner="agent-li"), S.IN_PROGRESS, policy, ctx)
    ticket.assign(handler="agent-qian", team="tier2", policy=policy, ctx=ctx("lead-wang", "team_lead"))
    assert ticket.handler == "agent-qian" and ticket.first_contact_owner == "agent-li"
    assert not hasattr(ticket, "change_first_contact_owner")


def test_assign_requires_classification(policy, ctx):
    ticket = new_ticket(policy, ctx)
    with pytest.raises(TransitionForbidden) as e:
        ticket.assign(handler="agent-zhao", team=None, policy=policy, ctx=ctx())
    assert e.value.rule == "ticket.assign_requires_classification"


def test_reopen_closed_but_not_archived(policy, ctx):
    ticket = drive_to(new_ticket(policy, ctx), S.CLOSED, policy, ctx)
    with pytest.raises(TransitionForbidden) as e:
        ticket.reopen(policy=policy, ctx=ctx())
    assert e.value.rule == "ticket.reopen_reason"
    ticket.reopen(policy=policy, ctx=ctx(reason="fault came back"))
    assert ticket.status == S.IN_PROGRESS and ticket.reopen_count == 1
    drive_to(ticket, S.ARCHIVED, policy, ctx)
    with pytest.raises(TransitionForbidden) as e:
        ticket.reopen(policy=policy, ctx=ctx(reason="again"))
    assert e.value.rule == "ticket.reopen_archived"


def test_first_response_only_once(policy, ctx):
    ticket = new_ticket(policy, ctx)
    ticket.respond_first(policy=policy, ctx=ctx())
    with pytest.raises(TransitionForbidden) as e:
        ticket.respond_first(policy=policy, ctx=ctx())
    assert e.value.rule == "ticket.first_response_once"


def test_clock_pause_needs_reason_and_blocks_resolution(policy, ctx):
    ticket = drive_to(new_ticket(policy, ctx), S.IN_PROGRESS, policy, ctx)
    with pytest.raises(TransitionForbidden):
        ticket.pause_clock(policy=policy, ctx=ctx())
    ticket.pause_clock(policy=policy, ctx=ctx(reason="waiting for the customer's photos"))
    with pytest.raises(TransitionForbidden) as e:
        ticket.resolve(policy=policy, ctx=ctx())
    assert e.value.rule == "ticket.resolve_paused"
    ticket.resume_clock(policy=policy, ctx=ctx())
    ticket.resolve(policy=policy, ctx=ctx("agent-zhao"))
    assert ticket.status == S.RESOLVED


def test_values_outside_the_policy_vocabulary_are_rejected_with_their_source(policy, ctx):
    ticket = new_ticket(policy, ctx)
    with pytest.raises(InvalidValue) as e:
        ticket.classify(priority="whenever", complexity="general", high_risk=False, policy=policy, ctx=ctx())
    assert "urgent" in str(e.value) and e.value.clause == policy.vocabulary("priority").source
    with pytest.raises(InvalidValue):
        Ticket.receive(id=uuid.uuid4(), customer_id="c", channel="pigeon", first_contact_owner="a",
                       policy=policy, ctx=ctx())


def test_a_case_stays_with_its_policy(policies, policy, ctx):
    ticket = new_ticket(policy, ctx)
    other = policies.get("telecom-2024@1")
    with pytest.raises(PolicyError):
        ticket.classify(priority="normal", complexity="general", high_risk=False, policy=other, ctx=ctx())


def test_business_time_cannot_run_backwards(policy, ctx, clock):
    ticket = new_ticket(policy, ctx)
    clock.advance(hours=-3)
    with pytest.raises(TransitionForbidden) as e:
        ticket.classify(priority="normal", complexity="general", high_risk=False, policy=policy, ctx=ctx())
    assert e.value.rule == "time.monotonic"


def test_replay_rebuilds_the_same_state(policy, ctx):
    ticket = drive_to(new_ticket(policy, ctx), S.CLOSED, policy, ctx)
    events = ticket.collect_events()
    replayed = None
    for event in events:
        replayed = event.mutate(replayed)
    assert replayed == ticket
