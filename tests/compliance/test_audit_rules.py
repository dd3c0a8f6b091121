"""One test per compliance rule: a case that breaks it (built through the domain's event methods
where the commands refuse, as imported data could be) and one that does not; the audit raises
exactly the expected findings, each citing its clause, and running it again raises nothing twice."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest
from sched_support import act, moment, tamper_event

from domain.access import DataAccess
from domain.context import Context
from domain.disposition import Disposition
from domain.findings import FINDING_NAMESPACE, finding_id, finding_key
from domain.jobs import JobRun
from domain.retention import Assessment, RecordDue
from domain.ticket import Ticket
from ledger.application import wall_clock
from ledger.keys import LogKeys
from ledger.settings import Settings


def raised(jobs, minutes: float = 0, *, when=None) -> set[tuple[str, str]]:  # noqa: ANN001
    """Run the audit; (rule, subject id) of every finding raised so far (none twice)."""
    jobs.run("compliance_audit", minutes, when=when)
    found = [(e.rule, e.subject_id) for e in jobs.events("Finding.Raised")]
    assert len(found) == len(set(found)), "a finding was raised twice"
    return set(found)


def clause_of(jobs, rule: str) -> str:  # noqa: ANN001
    return next(e.clause for e in jobs.events("Finding.Raised") if e.rule == rule)


def worked_ticket(ledger, customer, at, start: float = 0, complexity: str = "general") -> str:  # noqa: ANN001
    t = str(ledger.open_ticket(at(start), customer_id=customer, channel="phone").id)
    act(ledger, "ticket", t, "classify", at(start + 1), priority="normal", complexity=complexity, high_risk=False)
    act(ledger, "ticket", t, "assign", at(start + 2), handler="agent-li", team="hotline")
    act(ledger, "ticket", t, "respond_first", at(start + 3))
    act(ledger, "ticket", t, "start_work", at(start + 4))
    return t


def forced(ledger, kind: str, case_id: str, ctx, method: str, *args) -> None:  # noqa: ANN001
    """Record an event the command would refuse, straight through the aggregate's event method."""
    case = ledger.get(kind, case_id)
    getattr(case, method)(*args, case._meta(ctx))
    ledger._save(case)


def test_closed_without_customer_acceptance(ledger, jobs, at, customer):
    good, bad = worked_ticket(ledger, customer, at), worked_ticket(ledger, customer, at)
    for t in (good, bad):
        act(ledger, "ticket", t, "resolve", at(10))
        act(ledger, "ticket", t, "feed_back_result", at(11), channel="phone")
    act(ledger, "ticket", good, "record_acceptance", at(12), accepted=True)
    act(ledger, "ticket", good, "close", at(13))
    forced(ledger, "ticket", bad, at(13), "_closed")  # the domain refuses close without acceptance
    assert raised(jobs, 20) == {("closed_without_acceptance", bad)}
    assert clause_of(jobs, "closed_without_acceptance") == "003 §2.4.1; 003 §3.2.3"


def test_complaint_archived_without_evidence_remedy_notification_or_evaluation(ledger, jobs, at, customer):
    cm = ("cm-zhou", "complaint_manager")
    steps = [("evidence", "_evidence_added", ("call recording", None)),
             ("remedy", "_remedy_decided", ("compensation", "50")), ("notification", "_customer_notified", ("phone",)),
             ("evaluation", "_evaluated", (True, 5))]
    missing_one = {}
    for missing in [s[0] for s in steps] + [None]:
        k = str(ledger.accept_complaint(at(0, *cm), customer_id=customer, channel="phone").id)
        forced(ledger, "complaint", k, at(1, *cm), "_classified", "technical", 2)
        forced(ledger, "complaint", k, at(2, *cm), "_investigation_started")
        for minute, (name, method, args) in enumerate(steps, start=3):
            if name != missing:
                complaint = ledger.get("complaint", k)
                personal = (complaint._personal(),) if method in ("_evidence_added", "_remedy_decided", "_evaluated") else ()
                forced(ledger, "complaint", k, at(minute, *cm), method, *args, *personal)
        forced(ledger, "complaint", k, at(9, *cm), "_archived")
        missing_one[missing] = k
    assert raised(jobs, 30) == {(f"complaint_archived_without_{m}", k) for m, k in missing_one.items() if m}
    assert clause_of(jobs, "complaint_archived_without_remedy") == "002 §1.5"


def test_sla_breach(ledger, jobs, at, customer):
    late = str(ledger.open_ticket(at(0), customer_id=customer, channel="phone").id)
    on_time = worked_ticket(ledger, customer, at)
    jobs.run("sla_clocks", 20)  # the late ticket's first response (15 min) is overdue; nothing else is
    assert raised(jobs, 20) == {("sla_breach", late)}
    assert {e.subject_id for e in jobs.events("Finding.Raised")} == {late} != {on_time}
    assert clause_of(jobs, "sla_breach") == "003 §2.2.2"  # the clock's own clause


def test_second_review_missing(ledger, jobs, at, customer):
    reviewed = worked_ticket(ledger, customer, at, complexity="complex")
    act(ledger, "ticket", reviewed, "resolve", at(10))
    act(ledger, "ticket", reviewed, "review", at(11, "lead-wang", "team_lead"), approved=True)
    simple = worked_ticket(ledger, customer, at)
    act(ledger, "ticket", simple, "resolve", at(10))  # general: no second review needed
    unreviewed = worked_ticket(ledger, customer, at, complexity="complex")
    forced(ledger, "ticket", unreviewed, at(10), "_resolved", False, {"subject": customer, "fields": {}})
    self_reviewed = worked_ticket(ledger, customer, at, complexity="complex")
    act(ledger, "ticket", self_reviewed, "resolve", at(10))
    forced(ledger, "ticket", self_reviewed, at(11), "_reviewed", True, {"subject": customer, "fields": {}})
    assert raised(jobs, 20) == {("second_review_missing", unreviewed), ("second_review_missing", self_reviewed)}


def _contacts(ledger, at, customer, plan) -> dict[str, str]:  # noqa: ANN001
    """Interactions received at 0 and registered / routed at the given minutes (None: never)."""
    ids = {}
    for name, (registered, routed) in plan.items():
        i = str(ledger.receive_interaction(at(0), channel="phone", direction="inbound", customer_id=customer).id)
        if registered is not None:
            act(ledger, "interaction", i, "register", at(registered), agent_id="agent-li")
        if routed is not None:
            act(ledger, "interaction", i, "route", at(routed), queue="broadband")
        ids[name] = i
    return ids


def test_contact_not_registered_within_the_grace_time(ledger, jobs, at, customer):
    c = _contacts(ledger, at, customer, {"never": (None, None), "late": (75, 80), "in_time": (30, 40)})
    assert raised(jobs, 59) == set()  # grace: 60 minutes (audit.contact_not_registered)
    found = raised(jobs, 120)
    assert {s for r, s in found if r == "contact_not_registered"} == {c["never"], c["late"]}
    assert clause_of(jobs, "contact_not_registered") == "003 §1.2"


def test_contact_not_routed_within_the_grace_time(ledger, jobs, at, customer):
    c = _contacts(ledger, at, customer, {"registered_only": (10, None), "routed_late": (10, 90), "ok": (10, 20)})
    assert raised(jobs, 120) == {("contact_not_routed", c["registered_only"]), ("contact_not_routed", c["routed_late"])}


def test_first_contact_owner_changed(ledger, jobs, at, customer):
    contact = _contacts(ledger, at, customer, {"a": (1, 2), "b": (1, 2), "c": (1, 2)})
    inherited = str(ledger.open_ticket(at(3), customer_id=customer, channel="phone", interaction_id=contact["a"]).id)
    interaction = ledger.get("interaction", contact["b"])
    other_owner = Ticket.receive(id=uuid4(), customer_id=customer, channel="phone", first_contact_owner="agent-zhao",
                                 policy=ledger.policy_of(interaction), ctx=at(3), interaction_id=contact["b"])
    ledger._save(other_owner)  # open_ticket would have made agent-li, who registered the contact, its owner
    forced(ledger, "interaction", contact["c"], at(4), "_registered", "agent-zhao")  # registered twice
    assert raised(jobs, 10) == {("first_contact_owner_changed", str(other_owner.id)),
                                ("first_contact_owner_changed", contact["c"])}
    assert inherited not in {s for _, s in raised(jobs, 11)}


def test_personal_data_read_by_a_role_without_need(ledger, jobs, at, customer):
    for role in ("auditor", "agent"):  # auditors see no personal data (no personal.unmask); agents may
        ledger._save(DataAccess.disclose(id=uuid4(), subject=customer, fields=["contact"], resource="/customers",
                                         policy_ref="access@1", ctx=at(5, f"{role}-x", role, reason="checking")))
    found = raised(jobs, 10)
    assert len(found) == 1 and {r for r, _ in found} == {"personal_data_access_without_need"}
    assert next(e.facts["actor_role"] for e in jobs.events("Finding.Raised")) == "auditor"


def test_record_past_retention_not_disposed(ledger, jobs, at, customer, wall_clock):
    """The communication record (3 years, 003 §5.1) of a contact closed on 2025-09-01 is due on
    2028-09-04; with 30 days' grace (audit.retention_not_disposed) it is overdue from 2028-10-04."""
    contact = _contacts(ledger, at, customer, {"a": (1, 2)})["a"]
    act(ledger, "interaction", contact, "close", at(3), resolved_on_first_contact=True)
    cst = timezone(timedelta(hours=8))
    wall_clock.now = datetime(2028, 10, 6, tzinfo=cst)  # the audits below run in 2028
    assert raised(jobs, when=datetime(2028, 10, 3, tzinfo=cst)) == set()
    assert raised(jobs, when=datetime(2028, 10, 5, tzinfo=cst)) == {("retention_not_disposed", customer)}


def test_integrity_check_failed(ledger, env, jobs, at, customer, database_url):
    LogKeys.from_settings(Settings.from_environ(env)).init()
    jobs.run("integrity_full", 5)
    assert raised(jobs, 6) == set()  # an intact log
    failed = JobRun.start(id=uuid4(), job="integrity", trigger="manual", instance="elsewhere:1",
                          policy=ledger.policy_for_new_case(at(7)), ctx=at(7, "scheduler", "service"))
    failed.finish(counts={}, details={"integrity_ok": False, "problem": "leaf 3 altered", "problem_key": "3:3"},
                  policy=ledger.policy_of(failed), ctx=at(7, "scheduler", "service"))
    ledger._save(failed)  # a run recorded elsewhere (e.g. imported): the audit finds it in the stream
    assert raised(jobs, 8) == {("integrity_check_failed", "transparency-log")}
    tamper_event(ledger, database_url, 1)  # the customer's registration, changed in the database
    outcome = jobs.run("integrity_full", 9)
    assert outcome.details["integrity_ok"] is False and outcome.counts["findings_raised"] == 1
    # raised by the job itself: the damaged event stops the read models before they reach its run
    finding = ledger.get("finding", finding_id("integrity_check_failed", "log", "transparency-log",
                                               outcome.details["problem_key"]))
    assert finding.facts["problem"].startswith("leaf 0 ") and finding.clause == "000 §4.5.2"


def from_shell(ctx: Context, origin: tuple[str, str] | None) -> Context:
    """The context as the command line gives it: with the operating-system user and host."""
    return ctx if origin is None else replace(ctx, via="cli", os_user=origin[0], host=origin[1])


def test_four_eyes_step_given_from_one_os_account(ledger, jobs, at, customer):
    """Two people in a four-eyes step (a ticket's second review; a disposition's proposal and approval)
    acting as one OS user on one host; different hosts, different users or steps given over HTTP are fine."""
    shared, other_host, own_user = ("ops", "desk-7"), ("ops", "desk-8"), ("wang", "desk-7")
    tickets = {}
    for name, resolver, reviewer in [("shared", shared, shared), ("other host", shared, other_host),
                                     ("own users", shared, own_user), ("over http", None, shared)]:
        t = worked_ticket(ledger, customer, at, complexity="complex")
        act(ledger, "ticket", t, "resolve", from_shell(at(10), resolver))
        act(ledger, "ticket", t, "review", from_shell(at(11, "lead-wang", "team_lead"), reviewer), approved=True)
        tickets[name] = t
    record = RecordDue("customer", customer, "customer_profile", "003 §5.1", moment(-60))
    assessment = Assessment(customer, moment(12), (record,), ())
    dispositions = {}
    for name, proposer, approver in [("shared", shared, shared), ("other host", shared, other_host)]:
        d = Disposition.propose(id=uuid4(), assessment=assessment, policy=ledger.policy_for_new_case(at(12)),
                                ctx=from_shell(at(12, "records-chen", "records_manager"), proposer))
        d.approve(assessment=assessment, policy=ledger.policy_of(d),
                  ctx=from_shell(at(13, "compliance-qian", "compliance_officer"), approver))
        ledger._save(d)
        dispositions[name] = str(d.id)
    assert raised(jobs, 20) == {("four_eyes_same_os_user", tickets["shared"]),
                                ("four_eyes_same_os_user", dispositions["shared"])}
    assert clause_of(jobs, "four_eyes_same_os_user") == "003 §2.2.2; 003 §6.1"
    facts = {e.facts["step"]: e.facts for e in jobs.events("Finding.Raised")}
    assert facts["ticket.review"] == {"step": "ticket.review", "first": "agent-li", "second": "lead-wang",
                                      "os_user": "ops", "host": "desk-7"}
    assert (facts["disposition.approve"]["first"], facts["disposition.approve"]["second"]) == \
        ("records-chen", "compliance-qian")


def test_business_time_ahead_of_its_recording(ledger, jobs):
    """Events dated ahead of the time they were stored — as before the ledger refused them (here its
    clock is faked a year ahead; event timestamps are real) — beyond the ledger's clock skew."""
    now = datetime.now(timezone.utc)
    ledger.clock = lambda: now + timedelta(days=365)
    stored = {}
    for name, ahead in (("a day", timedelta(days=1)), ("a minute", timedelta(seconds=60))):
        ctx = Context("agent-li", "agent", now + ahead, uuid.uuid4().hex)
        stored[name] = str(ledger.register_customer(ctx, kind="individual", tier="general", contact={}).id)
    ledger.clock = wall_clock
    assert raised(jobs, when=datetime.now(timezone.utc)) == {("business_time_ahead", stored["a day"])}
    finding = next(e for e in jobs.events("Finding.Raised") if e.rule == "business_time_ahead")
    assert finding.clause == "000 §4.5.2" and finding.subject_kind == "customer"
    assert finding.facts["event"] == "Customer.Registered" and finding.facts["skew_seconds"] == 120
    assert 86_000 < finding.facts["ahead_seconds"] <= 86_400
    ledger.clock_skew = timedelta(seconds=30)  # the skew is the ledger's setting: a stricter one finds the other
    assert raised(jobs, when=datetime.now(timezone.utc)) == {("business_time_ahead", stored["a day"]),
                                                             ("business_time_ahead", stored["a minute"])}


@pytest.mark.parametrize("subject", ["0cf4c878-6e68-407e-9b3d-04440458fc10", "transparency-log", "客户-7", ""])
def test_finding_ids_are_uuid5_of_rule_subject_and_discriminator(subject):
    for discriminator in ("", "v3", "ticket.resolution:2"):
        expected = uuid.uuid5(FINDING_NAMESPACE, f"finding:sla_breach:ticket:{subject}:{discriminator}")
        assert finding_id("sla_breach", "ticket", subject, discriminator) == expected
        assert finding_key("sla_breach", "ticket", subject, discriminator) == str(expected)
