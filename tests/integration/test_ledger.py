"""The application service on a real database — every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from domain.errors import TransitionForbidden
from ledger.application import CaseLedger
from ledger.errors import AlreadyExists, ConcurrentUpdate, NotFound, StaleVersion


def customer(ledger: CaseLedger, ctx) -> str:
    return str(ledger.register_customer(ctx(), kind="individual", tier="general",
                                        contact={"name": "王五", "phone": "13900001111"}).id)


def routed_interaction(ledger: CaseLedger, ctx, customer_id: str):
    return ledger.receive_interaction(ctx(), channel="phone", direction="inbound", customer_id=customer_id,
                                      content="no dial tone", agent_id="agent-li", queue="fixed-line")


def test_ticket_from_interaction_is_saved_with_it_atomically(ledger, ctx):
    cid = customer(ledger, ctx)
    interaction = routed_interaction(ledger, ctx, cid)
    ticket = ledger.open_ticket(ctx("agent-zhao"), customer_id=cid, channel="phone", interaction_id=str(interaction.id))
    stored_interaction = ledger.get("interaction", interaction.id)
    assert stored_interaction.ticket_ids == [str(ticket.id)]
    stored = ledger.get("ticket", ticket.id)
    assert stored.first_contact_owner == "agent-li"  # the interaction's first-contact agent, not the caller
    assert stored.interaction_id == str(interaction.id)


def test_a_failed_multi_aggregate_save_writes_nothing(ledger, ctx):
    from uuid import uuid4
    from domain.ticket import Ticket

    cid = customer(ledger, ctx)
    interaction = routed_interaction(ledger, ctx, cid)
    first, second = ledger.get("interaction", interaction.id), ledger.get("interaction", interaction.id)
    first.close(resolved_on_first_contact=False, policy=ledger.policy_of(first), ctx=ctx())
    ledger.save(first)
    policy = ledger.policy_of(second)
    ticket = Ticket.receive(id=uuid4(), customer_id=cid, channel="phone", first_contact_owner="agent-li",
                            policy=policy, ctx=ctx())
    second.open_ticket(ticket_id=str(ticket.id), policy=policy, ctx=ctx())
    with pytest.raises(ConcurrentUpdate):
        ledger._save(ticket, second)
    assert not ledger.exists("ticket", ticket.id)
    assert ledger.get("interaction", interaction.id).ticket_ids == []


def test_events_carry_actor_role_request_and_policy(ledger, ctx):
    cid = customer(ledger, ctx)
    ticket = ledger.open_ticket(ctx("agent-li"), customer_id=cid, channel="web", summary="cannot log in")
    ledger.act("ticket", ticket.id, "classify", ctx("lead-wang", "team_lead"),
               {"priority": "urgent", "complexity": "general", "high_risk": False})
    events = ledger.history("ticket", ticket.id)
    assert [type(e).__name__ for e in events] == ["Received", "Classified"]
    assert events[1].meta["actor_id"] == "lead-wang" and events[1].meta["actor_role"] == "team_lead"
    assert all(e.meta["policy"] == "sop-2025@1" and e.meta["request_id"] and e.meta["occurred_at"] for e in events)
    assert ledger.history("ticket", ticket.id, after=1) == events[1:]


def test_expected_version_refuses_stale_writes(ledger, ctx):
    cid = customer(ledger, ctx)
    ticket = ledger.open_ticket(ctx(), customer_id=cid, channel="web")
    args = {"priority": "normal", "complexity": "general", "high_risk": False}
    ledger.act("ticket", ticket.id, "classify", ctx(), args, expected_version=1)
    with pytest.raises(StaleVersion) as e:
        ledger.act("ticket", ticket.id, "classify", ctx(), args, expected_version=1)
    assert e.value.actual == 2


def test_concurrent_writers_one_wins_nothing_lost(ledger, ctx):
    cid = customer(ledger, ctx)
    ticket = ledger.open_ticket(ctx(), customer_id=cid, channel="web")
    ledger.act("ticket", ticket.id, "classify", ctx(), {"priority": "normal", "complexity": "general",
                                                        "high_risk": False})
    barrier = threading.Barrier(8)
    outcomes: list[str] = []
    contexts = [ctx(f"lead-{n}", "team_lead") for n in range(8)]

    def assign(n: int) -> None:
        barrier.wait()
        try:
            ledger.act("ticket", ticket.id, "assign", contexts[n], {"handler": f"agent-{n}", "team": None},
                       expected_version=2)
            outcomes.append("ok")
        except (StaleVersion, ConcurrentUpdate) as e:
            outcomes.append(type(e).__name__)

    threads = [threading.Thread(target=assign, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 1, outcomes
    events = ledger.history("ticket", ticket.id)
    assert [type(e).__name__ for e in events] == ["Received", "Classified", "Assigned"]
    assert ledger.get("ticket", ticket.id).handler == events[2].handler


def test_import_is_batched_and_idempotent(ledger, ctx):
    records = [(ctx(), {"channel": "email", "direction": "inbound", "external_ref": f"mail-{n}",
                        "content": f"message {n}"}) for n in range(25)]
    assert ledger.import_interactions(records, batch_size=10) == {"imported": 25, "skipped": 0}
    again = records[:5] + [(ctx(), {"channel": "sms", "direction": "outbound", "external_ref": "sms-1"})]
    assert ledger.import_interactions(again, batch_size=4) == {"imported": 1, "skipped": 5}
    # (PostgreSQL sequences skip the ids of a rolled-back batch, so count rather than read the max id)
    assert len(ledger.recorder.select_notifications(start=1, limit=1000)) == 26


def test_one_survey_per_ticket_after_result_feedback(ledger, ctx):
    cid = customer(ledger, ctx)
    ticket = ledger.open_ticket(ctx(), customer_id=cid, channel="web")
    with pytest.raises(TransitionForbidden) as e:
        ledger.answer_survey(ctx(), ticket_id=str(ticket.id), csat=5)
    assert e.value.rule == "survey.requires_result_feedback"
    for action, args in [("classify", {"priority": "normal", "complexity": "general", "high_risk": False}),
                         ("assign", {"handler": "agent-zhao", "team": None}), ("start_work", {}), ("resolve", {}),
                         ("feed_back_result", {"channel": "sms"})]:
        ledger.act("ticket", ticket.id, action, ctx("agent-zhao"), args)
    survey = ledger.answer_survey(ctx(), ticket_id=str(ticket.id), csat=4, nps=9)
    assert survey.customer_id == cid
    with pytest.raises(AlreadyExists):
        ledger.answer_survey(ctx(), ticket_id=str(ticket.id), csat=1)


def test_feedback_becomes_a_complaint_in_one_transaction(ledger, ctx):
    cid = customer(ledger, ctx)
    feedback = ledger.submit_feedback(ctx(), kind="complaint", customer_id=cid, channel="app", content="rude agent")
    complaint = ledger.escalate_feedback(ctx("cm-zhou", "complaint_manager"), str(feedback.id), expected_version=1)
    assert ledger.get("feedback", feedback.id).complaint_id == str(complaint.id)
    assert ledger.get("complaint", complaint.id).customer_id == cid


def test_unknown_ids_and_kinds(ledger, ctx):
    cid = customer(ledger, ctx)
    with pytest.raises(NotFound):
        ledger.get("ticket", cid)  # a customer's id is not a ticket
    with pytest.raises(NotFound):
        ledger.get("ticket", "not-a-uuid")
    with pytest.raises(NotFound):
        ledger.open_ticket(ctx(), customer_id="7c9e6679-7425-40de-944b-e07fc1f90ae7", channel="web")


def test_contact_details_fold_from_personal_events(ledger, ctx):
    cid = customer(ledger, ctx)
    ledger.act("customer", cid, "update_contact", ctx(), {"contact": {"phone": "13700002222"}})
    assert ledger.contact_details(cid) == {"name": "王五", "phone": "13700002222"}
