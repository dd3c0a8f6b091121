"""Holds and the four-eyes disposition over HTTP, with problem+json refusals naming their rule."""

from __future__ import annotations

from datetime import timedelta


def test_hold_and_disposition_over_http(api, clock, wall_clock):
    created = api.post("/customers", json={"kind": "individual", "tier": "general",
                                           "contact": {"name": "上官婉儿", "phone": "13900001111"}})
    assert created.status_code == 201, created.json
    subject = created.json["id"]

    rows = api.get(f"/retention/records?subject={subject}", as_="records")
    assert rows.status_code == 200, rows.json
    assert [(r["kind"], r["record_class"]) for r in rows.json["items"]] == [("customer", "customer_profile")]
    assert api.get("/retention/records", as_="agent").status_code == 403

    hold = api.post("/holds", as_="records", json={"target_kind": "customer", "target_id": subject,
                                                   "authority": "court order 17", "reason": "litigation"})
    assert hold.status_code == 201, hold.json
    assert api.post("/holds", as_="records", json={"target_kind": "customer", "target_id": subject,
                                                   "authority": "x"}).status_code == 422  # reason required

    clock.advance(days=3 * 365 + 120)
    wall_clock.now = clock.now + timedelta(days=1)  # due dates are judged by the wall clock, not business time
    refused = api.post("/dispositions", as_="records", json={"subject": subject})
    assert refused.status_code == 409
    assert refused.mimetype == "application/problem+json" and "disposition.not_disposable" in str(refused.json)

    released = api.post(f"/holds/{hold.json['id']}/release", as_="compliance", json={"reason": "settled"})
    assert released.status_code == 200 and released.json["status"] == "released"
    report = api.get("/retention/report", as_="auditor", query_string={"as_of": clock.now.isoformat()})
    assert report.status_code == 200 and report.json["items"][0]["disposable"] is True

    proposed = api.post("/dispositions", as_="records", json={"subject": subject})
    assert proposed.status_code == 201, proposed.json
    d = proposed.json["id"]
    assert api.post(f"/dispositions/{d}/approve", as_="records", json={}).status_code == 403  # not a compliance role
    assert api.post(f"/dispositions/{d}/execute", as_="compliance", json={}).status_code == 409  # not approved
    assert api.post(f"/dispositions/{d}/approve", as_="compliance", json={}).status_code == 200
    executed = api.post(f"/dispositions/{d}/execute", as_="compliance", json={})
    assert executed.status_code == 200, executed.json
    certificate = executed.json["certificate"]
    assert certificate["proposer"] == "records-chen" and certificate["approver"] == "compliance-xu"
    assert certificate["records"][0]["record_class"] == "customer_profile"

    # The facts are still there; the personal fields are destroyed, for every reader.
    customer = api.get(f"/customers/{subject}", as_="records", headers={"X-Access-Reason": "disposition check"})
    assert customer.status_code == 200 and customer.json["tier"] == "general"
    assert set(customer.json["contact"].values()) == {None}
    refused = api.post(f"/customers/{subject}/update-contact", as_="agent", json={"contact": {"name": "新"}})
    assert refused.status_code == 409 and "retention.subject_destroyed" in str(refused.json)


def test_report_rejects_times_out_of_range(api):
    response = api.get("/retention/report", as_="auditor", query_string={"as_of": "0001-01-01T00:00:00+01:00"})
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
