"""The SLA job with an injected clock: exactly the expected breaches and escalations, each once.

Limits (sop-2025 unless said otherwise), escalation per rules.sla_escalation: the breach goes to
the team lead at the limit, to management one more limit later if the clock still runs.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta

import pytest
from sched_support import CST, T0, Jobs, act

from ledger.bootstrap import build
from projections.sla_clocks import SLA_CLOCK_TABLE
from services.sla import SlaMonitor

H = 60  # minutes


def test_breaches_and_escalations_appear_once_as_time_passes(ledger, jobs, at, customer):
    cm = ("cm-zhou", "complaint_manager")
    t = str(ledger.open_ticket(at(0), customer_id=customer, channel="phone").id)
    k = str(ledger.accept_complaint(at(0, *cm), customer_id=customer, channel="phone").id)
    f = str(ledger.submit_feedback(at(0), kind="suggestion", customer_id=customer, channel="web").id)
    assert jobs.run("sla_clocks", 10).counts["breaches"] == 0
    act(ledger, "ticket", t, "respond_first", at(20))  # 5 minutes late: missed, stopped before management
    act(ledger, "ticket", t, "classify", at(60), priority="normal", complexity="general", high_risk=False)
    act(ledger, "feedback", f, "respond", at(100))

    expected_breaches: set = set()
    expected_rungs: Counter = Counter()
    for minutes, breaches, rungs in [
        (24 * H - 1, {(t, "ticket.first_response")}, {"team_lead": 1}),
        (24 * H + 1, set(), {}),  # acceptance (classified after 1 h) and feedback response met
        (48 * H + 1, {(t, "ticket.resolution"), (k, "complaint.initial_handling")}, {"team_lead": 2}),
        (48 * H + 1, set(), {}),  # the same time again: nothing twice
        (72 * H + 1, {(k, "complaint.closed_loop"), (f, "feedback.reply")}, {"team_lead": 2}),
        (96 * H + 1, set(), {"management": 2}),  # resolution and initial handling, one more limit overdue
        (144 * H + 1, set(), {"management": 2}),  # closed loop and reply
        (300 * H, set(), {}),  # the top of the ladder: nothing more, ever
    ]:
        jobs.run("sla_clocks", minutes)
        expected_breaches |= {(case, clock, 0) for case, clock in breaches}
        expected_rungs.update(rungs)
        assert jobs.breaches() == expected_breaches, minutes
        assert Counter(rung for _, rung in jobs.escalations()) == expected_rungs, minutes

    resolution = next(e for e in jobs.events("SLABreach.SLABreached") if e.clock_key == "ticket.resolution")
    assert datetime.fromisoformat(resolution.breached_at) == T0 + timedelta(hours=48)
    assert resolution.clause == "003 §1.2" and resolution.meta["actor_role"] == "service"
    assert [rung for breach, rung in jobs.escalations() if breach == str(resolution.originator_id)] == [
        "team_lead", "management"]


@pytest.fixture
def telecom(env):
    """telecom-2024: acceptance within 2 working days (002 §3.1 item 2)."""
    ledger = build({**env, "CASELEDGER_POLICY": "telecom-2024"})
    yield ledger
    ledger.close()


def test_working_days_follow_national_day_and_make_up_days(telecom, env, at):
    """2025: National Day holidays Oct 1–8; Sun Sep 28 and Sat Oct 11 are make-up working days. A limit
    of N working days ends at 24:00 of the N-th working day after the day the clock started."""
    jobs = Jobs(telecom, env)
    customer = str(telecom.register_customer(at(when=datetime(2025, 9, 1, tzinfo=CST)), kind="individual",
                                             tier="vip", contact={"name": "周九"}).id)
    opened = {}
    for name, received in (("fri", datetime(2025, 9, 26, 10, tzinfo=CST)), ("tue", datetime(2025, 9, 30, 10, tzinfo=CST)),
                           ("fri2", datetime(2025, 10, 10, 10, tzinfo=CST))):
        ticket = telecom.open_ticket(at(when=received), customer_id=customer, channel="phone")
        act(telecom, "ticket", ticket.id, "respond_first", at(when=received + timedelta(minutes=5)))
        opened[name] = str(ticket.id)

    def acceptance() -> dict[str, datetime]:
        return {name: datetime.fromisoformat(e.breached_at) for name, case in opened.items()
                for e in jobs.events("SLABreach.SLABreached") if e.case_id == case and e.clock_key == "ticket.acceptance"}

    day = lambda m, d, h=0, minute=0: datetime(2025, m, d, h, minute, tzinfo=CST)  # noqa: E731
    # Fri Sep 26 → Sun Sep 28 (make-up) and Mon Sep 29: due at the end of Mon Sep 29.
    jobs.run("sla_clocks", when=day(9, 29, 23, 59))
    assert acceptance() == {}
    jobs.run("sla_clocks", when=day(9, 30, 0, 1))
    assert acceptance() == {"fri": day(9, 30)}
    # Tue Sep 30 → the holiday week does not count: Thu Oct 9 and Fri Oct 10.
    jobs.run("sla_clocks", when=day(10, 10, 23, 59))
    assert acceptance() == {"fri": day(9, 30)}
    jobs.run("sla_clocks", when=day(10, 11, 0, 1))
    assert acceptance() == {"fri": day(9, 30), "tue": day(10, 11)}
    # Fri Oct 10 → Sat Oct 11 (make-up) and Mon Oct 13.
    jobs.run("sla_clocks", when=day(10, 13, 23, 59))
    assert "fri2" not in acceptance()
    jobs.run("sla_clocks", when=day(10, 14, 0, 1))
    assert acceptance()["fri2"] == day(10, 14)
    jobs.run("sla_clocks", when=day(10, 20))
    # Management one more limit (2 working days) later: Fri → end of Thu Oct 9; Tue → end of Mon Oct 13;
    # Fri Oct 10 → end of Wed Oct 15. The 48-hour resolution clock ignores the calendar.
    due = {e.originator_id: e.due_at for e in jobs.events("SLABreach.Escalated") if e.to_rung == "management"}
    breaches = {(e.case_id, e.clock_key): e.originator_id for e in jobs.events("SLABreach.SLABreached")}
    assert {name: due[breaches[(case, "ticket.acceptance")]] for name, case in opened.items()} == {
        "fri": day(10, 10).isoformat(), "tue": day(10, 14).isoformat(), "fri2": day(10, 16).isoformat()}
    assert {name: breaches.get((case, "ticket.resolution")) is not None for name, case in opened.items()} == {
        "fri": True, "tue": True, "fri2": True}
    assert len(breaches) == 6 and len(jobs.escalations()) == 12


def _in_progress(ledger, customer, at, start: float = 0) -> str:
    t = str(ledger.open_ticket(at(start), customer_id=customer, channel="phone").id)
    act(ledger, "ticket", t, "classify", at(start + 1), priority="normal", complexity="general", high_risk=False)
    act(ledger, "ticket", t, "assign", at(start + 2), handler="agent-li", team="hotline")
    act(ledger, "ticket", t, "respond_first", at(start + 3))
    act(ledger, "ticket", t, "start_work", at(start + 4))
    return t


def test_pauses_move_the_deadline_but_never_undo_a_breach(ledger, jobs, at, customer):
    waiting = _in_progress(ledger, customer, at)
    act(ledger, "ticket", waiting, "pause_clock", at(10 * H, reason="waiting for the customer's photos"))
    act(ledger, "ticket", waiting, "resume_clock", at(30 * H))
    late_pause = _in_progress(ledger, customer, at)
    act(ledger, "ticket", late_pause, "pause_clock", at(50 * H, reason="waiting for the customer"))

    jobs.run("sla_clocks", 55 * H)  # 48 h passed: the late pause came after the deadline
    assert jobs.breaches() == {(late_pause, "ticket.resolution", 0)}
    jobs.run("sla_clocks", 68 * H - 1)  # 48 h + 20 h paused
    assert jobs.breaches() == {(late_pause, "ticket.resolution", 0)}
    jobs.run("sla_clocks", 68 * H + 1)
    assert jobs.breaches() == {(late_pause, "ticket.resolution", 0), (waiting, "ticket.resolution", 0)}
    by_case = {e.case_id: datetime.fromisoformat(e.breached_at) for e in jobs.events("SLABreach.SLABreached")}
    assert by_case == {late_pause: T0 + timedelta(hours=48), waiting: T0 + timedelta(hours=68)}
    with SlaMonitor(ledger).runner.db.reading() as cur:
        rows = dict(cur.execute(f"SELECT case_id, paused_seconds FROM {SLA_CLOCK_TABLE.name} "
                                "WHERE clock_key = 'ticket.resolution'").fetchall())
    assert rows == {waiting: 20 * 3600, late_pause: 0}  # the open pause is not counted yet


def test_a_reopened_ticket_runs_its_resolution_clock_again(ledger, jobs, at, customer):
    t = _in_progress(ledger, customer, at)
    for action, minutes, args in (("resolve", 100, {}), ("feed_back_result", 110, {"channel": "phone"}),
                                  ("record_acceptance", 120, {"accepted": True}), ("close", 130, {})):
        act(ledger, "ticket", t, action, at(minutes), **args)
    act(ledger, "ticket", t, "reopen", at(200, "lead-wang", "team_lead", reason="the fault came back"))
    jobs.run("sla_clocks", 200 + 48 * H - 1)
    assert jobs.breaches() == set()
    jobs.run("sla_clocks", 200 + 48 * H + 1)
    assert jobs.breaches() == {(t, "ticket.resolution", 1)}  # the second cycle only; the first was met


def test_two_jobs_at_once_record_each_breach_once(ledger, env, at, customer, jobs):
    tickets = [str(ledger.open_ticket(at(n), customer_id=customer, channel="web").id) for n in range(6)]
    monitors = [SlaMonitor(build(env)) for _ in range(2)]
    results: list = []
    ctx = at(100 * H, "scheduler", "service")
    threads = [threading.Thread(target=lambda m=m: results.append(m.run(ctx))) for m in monitors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # acceptance, first response and resolution of each ticket, each escalated to team lead and management
    assert jobs.breaches() == {(t, clock, 0) for t in tickets
                               for clock in ("ticket.acceptance", "ticket.first_response", "ticket.resolution")}
    assert len(jobs.escalations()) == 2 * 3 * len(tickets) == len(set(jobs.escalations()))
    assert sum(r["breaches"] for r in results) == 3 * len(tickets)
    for monitor in monitors:
        monitor.close()
        monitor.ledger.close()
