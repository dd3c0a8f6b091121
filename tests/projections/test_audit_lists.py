"""The lists of inspection samples and audit engagements (projections/audits.py, GET /audits/samples and
GET /audits): rows as the events leave them, filters by status, auditor and period, keyset pages, a
rebuild equal to incremental processing, and the same access and conditional reads as every list."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from projections.audits import list_audits, list_samples
from projections.catalog import runner_for
from projections.queries import BadCursor
from projections.timeutil import stamp
from services.sampling import draw_sample, open_audit

#: The ``at`` fixture's T0 (tests/projections/conftest.py); checked in ``records``.
T0 = datetime(2025, 9, 1, 9, 0, tzinfo=timezone(timedelta(hours=8)))
QA = ("qa-he", "compliance_officer")
GAO = ("auditor-gao", "auditor")


@pytest.fixture
def records(ledger, at) -> dict[str, Any]:
    """Four tickets; sample s1 (2 cases, drawn by qa-he at +10 min, one inspected), sample s2 (1 case,
    drawn by auditor-gao at +20 min, inspected); audit a1 (auditor-gao, days 0–30, one observation,
    concluded), audit a2 (auditor-zhu, days 60–90, open)."""
    assert at(0).occurred_at == T0
    customer = ledger.register_customer(at(-30), kind="individual", tier="vip", contact={"name": "孙八"}).id
    for n in range(4):
        ledger.open_ticket(at(n), customer_id=str(customer), channel="phone")
    s1 = draw_sample(ledger, at(10, *QA), {"type": ["ticket"]}, 2, seed=1)
    s2 = draw_sample(ledger, at(20, *GAO), {"type": ["ticket"]}, 1, seed=2)
    ledger.act("sample", s1.id, "inspect", at(21, *QA), {"case_id": s1.case_ids[0], "result": "conforming"})
    ledger.act("sample", s2.id, "inspect", at(22, *GAO), {"case_id": s2.case_ids[0], "result": "nonconforming"})
    a1 = open_audit(ledger, at(30, *QA), title="Q3 tickets", scope="phone tickets", period_from=T0,
                    period_to=T0 + timedelta(days=30), auditor="auditor-gao")
    a2 = open_audit(ledger, at(31, *QA), title="Q4 tickets", scope="phone tickets",
                    period_from=T0 + timedelta(days=60), period_to=T0 + timedelta(days=90), auditor="auditor-zhu")
    ledger.act("audit", a1.id, "observe", at(40, *GAO), {"text": "one late acceptance"})
    ledger.act("audit", a1.id, "conclude", at(41, *GAO), {"conclusion": "needs_improvement", "summary": "one late"})
    return {"s1": str(s1.id), "s2": str(s2.id), "a1": str(a1.id), "a2": str(a2.id)}


def ids(page: dict[str, Any], key: str) -> list[str]:
    return [row[key] for row in page["items"]]


def test_sample_and_audit_rows_filters_pages_and_rebuild(ledger, records):
    s1, s2, a1, a2 = records["s1"], records["s2"], records["a1"], records["a2"]
    runner = runner_for(ledger, batch_size=1)  # one event per batch: the counts add up across batches
    try:
        runner.catch_up()
        db = runner.db
        first = list_samples(db, limit=1)
        row = first["items"][0]
        assert (row["sample_id"], row["status"], row["case_count"], row["inspected_count"]) == (s1, "drawn", 2, 1)
        assert (row["auditor"], row["drawn_at"], row["method"], row["size"]) == ("qa-he", stamp(T0 + timedelta(minutes=10)),
                                                                                 "random", 2)
        rest = list_samples(db, cursor=first["next_cursor"], limit=1)
        assert ids(rest, "sample_id") == [s2] and rest["next_cursor"] is None
        assert rest["items"][0]["status"] == "inspected"  # its one case has its result
        assert ids(list_samples(db, status=["inspected"]), "sample_id") == [s2]
        assert ids(list_samples(db, auditor=["qa-he"]), "sample_id") == [s1]
        assert ids(list_samples(db, from_=T0 + timedelta(minutes=15)), "sample_id") == [s2]
        assert ids(list_samples(db, to=T0 + timedelta(minutes=15)), "sample_id") == [s1]
        assert ids(list_samples(db, to=T0 + timedelta(minutes=10)), "sample_id") == []  # to is exclusive

        audits = list_audits(db)
        assert ids(audits, "audit_id") == [a1, a2]
        concluded = audits["items"][0]
        assert (concluded["status"], concluded["conclusion"], concluded["observation_count"]) == (
            "concluded", "needs_improvement", 1)
        assert concluded["concluded_at"] == stamp(T0 + timedelta(minutes=41))
        assert audits["items"][1]["status"] == "open" and audits["items"][1]["concluded_at"] is None
        assert ids(list_audits(db, status=["open"]), "audit_id") == [a2]
        assert ids(list_audits(db, auditor=["auditor-zhu"]), "audit_id") == [a2]
        # a1 covers days 0–30, a2 days 60–90: a period from day 45 overlaps a2 only, one up to day 45 a1 only
        assert ids(list_audits(db, from_=T0 + timedelta(days=45)), "audit_id") == [a2]
        assert ids(list_audits(db, to=T0 + timedelta(days=45)), "audit_id") == [a1]
        assert ids(list_audits(db, from_=T0 + timedelta(days=30)), "audit_id") == [a2]  # a1 ends as it begins
        with pytest.raises(BadCursor):
            list_audits(db, cursor=first["next_cursor"])  # a sample list's cursor

        incremental = runner.digests()["audits"]
        rebuilt = runner_for(ledger, batch_size=500)
        try:
            rebuilt.rebuild(["audits"])
            assert rebuilt.digests()["audits"] == incremental
        finally:
            rebuilt.close()
    finally:
        runner.close()


def test_the_lists_over_http(api, records):
    samples = api.get("/audits/samples?limit=1", as_="auditor")
    assert samples.status_code == 200, samples.json
    assert [s["id"] for s in samples.json["items"]] == [records["s1"]]
    link = samples.headers["Link"]
    assert link.startswith("</audits/samples?") and 'rel="next"' in link and "limit=1" in link
    following = api.get(link[1:link.index(">")], as_="auditor")
    assert [s["id"] for s in following.json["items"]] == [records["s2"]] and "Link" not in following.headers

    audits = api.get("/audits?status=concluded&auditor=auditor-gao", as_="compliance")
    assert audits.status_code == 200 and [a["id"] for a in audits.json["items"]] == [records["a1"]]
    period = api.get("/audits", as_="auditor", query_string={"from": (T0 + timedelta(days=45)).isoformat()})
    assert [a["id"] for a in period.json["items"]] == [records["a2"]]

    # unchanged: 304 to the ETag it gave
    again = api.get("/audits?status=concluded&auditor=auditor-gao", as_="compliance",
                    headers={"If-None-Match": audits.headers["ETag"]})
    assert again.status_code == 304
    # the same roles that may read one sample or audit: an agent may not
    assert api.get("/audits/samples", as_="agent").status_code == 403
    assert api.get("/audits", as_="agent").status_code == 403
    assert api.get("/audits?status=lost", as_="auditor").status_code == 422
    assert api.get("/audits?colour=red", as_="auditor").status_code == 422  # unknown filter, not ignored
    assert api.get(f"/audits?cursor={samples.json['next_cursor']}", as_="auditor").status_code == 400
