"""Samples for inspection: drawn again with the same seed they give the same cases; stratified samples take
the size from each stratum; every sampled case gets one inspection result; an audit engagement records
observations linked to cases, findings and samples, and its conclusion."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from domain.errors import InvalidValue, TransitionForbidden
from domain.sampling import draw_cases
from services.sampling import draw_sample, open_audit, population, redraw

INSPECTOR = ("qa-he", "compliance_officer")


@pytest.fixture
def cases(ledger, at, customer) -> dict[str, list[str]]:
    """Six tickets (four by phone, two by web) and two complaints."""
    out: dict[str, list[str]] = {"phone": [], "web": [], "complaint": []}
    for n in range(6):
        channel = "phone" if n < 4 else "web"
        out[channel].append(str(ledger.open_ticket(at(n), customer_id=customer, channel=channel).id))
    for n in range(2):
        out["complaint"].append(str(ledger.accept_complaint(at(10 + n), customer_id=customer, channel="phone").id))
    return out


def test_the_same_seed_draws_the_same_cases(ledger, at, cases):
    tickets = cases["phone"] + cases["web"]
    first = draw_sample(ledger, at(20, *INSPECTOR), {"type": ["ticket"]}, 3, seed=20251)
    second = draw_sample(ledger, at(21, *INSPECTOR), {"type": ["ticket"]}, 3, seed=20251)
    assert first.case_ids == second.case_ids and len(first.case_ids) == 3 and set(first.case_ids) <= set(tickets)
    # the method, by hand: random.Random(seed) over the ticket ids sorted
    assert first.case_ids == sorted(random.Random(20251).sample(sorted(tickets), 3))
    assert (first.population_size, first.seed, first.method) == (6, 20251, "random")
    assert redraw(ledger, ledger.get("sample", first.id)) == {"case_ids": first.case_ids, "same_population": True}
    other = draw_sample(ledger, at(22, *INSPECTOR), {"type": ["ticket"]}, 6, seed=7)
    assert sorted(other.case_ids) == sorted(tickets)  # a sample as large as its population is all of it


def test_a_stratified_sample_takes_its_size_from_each_stratum(ledger, at, cases):
    sample = draw_sample(ledger, at(20, *INSPECTOR), {"type": ["ticket", "complaint"]}, 1, seed=3, stratify_by="type")
    picked = set(sample.case_ids)
    assert len(picked & set(cases["phone"] + cases["web"])) == 1 and len(picked & set(cases["complaint"])) == 1
    by_channel = draw_sample(ledger, at(21, *INSPECTOR), {"type": ["ticket"]}, 2, seed=3, stratify_by="channel")
    assert len(set(by_channel.case_ids) & set(cases["phone"])) == 2 and len(set(by_channel.case_ids) & set(cases["web"])) == 2
    web_only = population(ledger, {"channel": ["web"]})
    assert sorted(c["case_id"] for c in web_only) == sorted(cases["web"])
    in_period = population(ledger, {"type": ["ticket"], "from": at(1).occurred_at, "to": at(3).occurred_at})
    assert sorted(c["case_id"] for c in in_period) == sorted(cases["phone"][1:3])
    with pytest.raises(InvalidValue) as dimension:
        draw_sample(ledger, at(22, *INSPECTOR), {}, 1, seed=1, stratify_by="colour")
    assert dimension.value.rule == "sample.dimension"


def test_draw_cases_is_independent_of_the_population_order():
    population = [(f"c{n}", n % 2) for n in range(10)]
    assert draw_cases(population, 3, 99, False) == draw_cases(list(reversed(population)), 3, 99, False)
    assert draw_cases(population, 2, 99, True) == draw_cases(list(reversed(population)), 2, 99, True)


def test_each_sampled_case_gets_one_inspection_result(ledger, at, cases):
    sample = draw_sample(ledger, at(20, *INSPECTOR), {"channel": ["web"]}, 2, seed=5)
    first, second = sample.case_ids
    ledger.act("sample", sample.id, "inspect", at(30, *INSPECTOR), {"case_id": first, "result": "conforming"})
    with pytest.raises(TransitionForbidden) as twice:
        ledger.act("sample", sample.id, "inspect", at(31, *INSPECTOR), {"case_id": first, "result": "conforming"})
    assert twice.value.rule == "sample.inspected_once"
    with pytest.raises(TransitionForbidden) as outside:
        ledger.act("sample", sample.id, "inspect", at(32, *INSPECTOR), {"case_id": cases["phone"][0],
                                                                         "result": "conforming"})
    assert outside.value.rule == "sample.case_not_sampled"
    done = ledger.act("sample", sample.id, "inspect", at(33, *INSPECTOR),
                      {"case_id": second, "result": "nonconforming", "note": "no acceptance on file"})
    assert done.status == "inspected" and done.inspections[second]["result"] == "nonconforming"
    assert done.inspections[first]["inspector"] == "qa-he"


def test_an_audit_engagement_records_observations_and_a_conclusion(ledger, at, cases):
    sample = draw_sample(ledger, at(20, *INSPECTOR), {"type": ["complaint"]}, 1, seed=11)
    audit = open_audit(ledger, at(21, *INSPECTOR), title="Q3 complaint handling", scope="complaints, phone channel",
                       period_from=at(0).occurred_at, period_to=at(0).occurred_at + timedelta(days=30),
                       auditor="auditor-gao")
    with pytest.raises(TransitionForbidden) as other:
        ledger.act("audit", audit.id, "observe", at(22, *INSPECTOR), {"text": "x"})
    assert other.value.rule == "audit.auditor_only"
    ledger.act("audit", audit.id, "observe", at(23, "auditor-gao", "auditor"),
               {"text": "remedy decided late", "case_ids": sample.case_ids, "sample_ids": [str(sample.id)]})
    concluded = ledger.act("audit", audit.id, "conclude", at(24, "auditor-gao", "auditor"),
                           {"conclusion": "needs_improvement", "summary": "one late remedy in the sample"})
    assert (concluded.status, concluded.conclusion, len(concluded.observations)) == ("concluded", "needs_improvement", 1)
    assert concluded.observations[0]["case_ids"] == sample.case_ids
    with pytest.raises(TransitionForbidden) as after:
        ledger.act("audit", audit.id, "observe", at(25, "auditor-gao", "auditor"), {"text": "late"})
    assert after.value.rule == "audit.concluded"
