"""KPIs against numbers computed by hand from the ``scenario`` fixture (see its comments)."""

from __future__ import annotations

from datetime import date

import pytest

from projections.kpis import KPIS, dashboard

pytestmark = pytest.mark.integration

SEP1, SEP3 = date(2025, 9, 1), date(2025, 9, 3)


def kpis(runner, ledger, first, last, group_by):
    runner.catch_up()
    body = dashboard(runner.db, ledger, first, last, group_by)
    return {g["group"]: {k["key"]: k for k in g["kpis"]} for g in body["groups"]}, body


def test_kpis_per_day_match_hand_computed_values(ledger, runner, scenario):
    groups, body = kpis(runner, ledger, SEP1, SEP3, "day")
    assert body["customers"] == 2 and body["policy"] == "sop-2025@1"
    assert sorted(groups) == ["2025-09-01", "2025-09-03"]  # nothing happened on the 2nd
    d1, d3 = groups["2025-09-01"], groups["2025-09-03"]
    value = lambda group, key: group[key]["value"]  # noqa: E731

    # Intake (cohort of the receipt day): 4 received (i1..i4), 3 registered and routed (not i3).
    assert (d1["intake_completeness"]["numerator"], d1["intake_completeness"]["denominator"]) == (3, 4)
    assert d1["intake_completeness"]["target"]["value"] == 1.0 and d1["intake_completeness"]["target"]["met"] is False
    # FCR: i1, i2, i4 closed on the 1st; only i1 resolved on first contact -> 1/3.
    assert value(d1, "first_contact_resolution") == pytest.approx(1 / 3)
    # Closure: 2 received (t1, t2) and 1 closed (t1) on the 1st; t2 closed and reopened on the 3rd.
    assert value(d1, "closure_rate") == 0.5 and value(d3, "closure_rate") is None
    assert value(d1, "reopen_rate") == 0.0 and value(d3, "reopen_rate") == 1.0
    # AHT: t1 received at 6, resolved at 66 -> 3600 s (the 1st); t2 received at 30, resolved after
    # review at 3030 -> 180000 s (the 3rd).
    assert value(d1, "average_handling_time") == 3600 and value(d3, "average_handling_time") == 180000
    # Surveys: t1 CSAT 5 / NPS 10 (the 1st) -> CSAT 1.0, NPS +100; t2 CSAT 3 / NPS 6 (the 3rd) -> 0.0, −100.
    assert value(d1, "csat") == 1.0 and d1["csat"]["target"]["value"] == 0.85 and d1["csat"]["target"]["met"]
    assert value(d3, "csat") == 0.0 and d3["csat"]["target"]["met"] is False
    assert value(d1, "nps") == 100.0 and value(d3, "nps") == -100.0
    # Complaints (cohort of acceptance day): 2 accepted, k1 escalated -> 0.5; 2 / 2 customers × 1000.
    assert value(d1, "escalation_rate") == 0.5
    assert value(d1, "complaint_rate_per_1000_customers") == 1000.0
    assert d1["complaint_rate_per_1000_customers"]["target"]["value"] == pytest.approx(5.0)  # 0.5 % × 1000
    # SLA clocks (sop-2025@1): first response 15 min: t1 14 min met, t2 30 min missed (both the 1st).
    assert value(d1, "sla_compliance.ticket.first_response") == 0.5
    # acceptance (received -> classified, 24 h): both 1 min; result feedback (24 h): 4 and 10 min;
    # review (resolved -> accepted, 48 h): 14 and 20 min; resolution (48 h): t1 met, t2 (50 h) missed.
    assert value(d1, "sla_compliance.ticket.acceptance") == 1.0
    assert value(d1, "sla_compliance.ticket.resolution") == 1.0 and value(d3, "sla_compliance.ticket.resolution") == 0.0
    assert value(d1, "sla_compliance.ticket.result_feedback") == 1.0
    assert value(d3, "sla_compliance.ticket.review") == 1.0
    # complaint initial handling (48 h): k1 2 min -> met; closed loop: nobody notified yet -> no value.
    assert value(d1, "sla_compliance.complaint.initial_handling") == 1.0
    assert value(d1, "sla_compliance.complaint.closed_loop") is None
    assert d1["sla_compliance.ticket.first_response"]["target"]["clause"] == "003 §2.2.2"


def test_kpis_per_channel_and_team(ledger, runner, scenario):
    by_channel, _ = kpis(runner, ledger, SEP1, SEP3, "channel")
    # phone: i1, i2, i4 all routed; web: i3 never registered.
    assert by_channel["phone"]["intake_completeness"]["value"] == 1.0
    assert by_channel["web"]["intake_completeness"]["value"] == 0.0
    # t1 (phone) met its first response, t2 (web) did not.
    assert by_channel["phone"]["sla_compliance.ticket.first_response"]["value"] == 1.0
    assert by_channel["web"]["sla_compliance.ticket.first_response"]["value"] == 0.0
    by_team, _ = kpis(runner, ledger, SEP1, SEP3, "team")
    # FCR by routing queue: broadband closed i1 (resolved) and i2 (not), mobile closed i4 (not).
    assert by_team["broadband"]["first_contact_resolution"]["value"] == 0.5
    assert by_team["mobile"]["first_contact_resolution"]["value"] == 0.0
    # Resolution time by the handling team at resolution: t1 broadband, t2 mobile.
    assert by_team["broadband"]["average_handling_time"]["value"] == 3600
    assert by_team["mobile"]["average_handling_time"]["value"] == 180000


def test_a_period_without_events_has_no_groups_and_every_kpi_has_a_definition(ledger, runner, scenario):
    groups, body = kpis(runner, ledger, date(2025, 8, 1), date(2025, 8, 31), "day")
    assert groups == {} and body["customers"] == 0
    assert all(k.definition for k in KPIS.values())
