"""Conditional reads of read models: the ETag derives from the read model's position and what the
query selects, not from the time of the request, so an unchanged list answers 304.

The app's clock in these tests moves a minute on every call, so each request is computed "at" a
later ``as_of`` than the one before: exactly what used to change the tag every time.
"""

from __future__ import annotations


def test_an_unchanged_ticket_list_answers_304_until_the_log_moves(api, customer_id):
    assert api.post("/tickets", json={"customer_id": customer_id, "channel": "phone"}).status_code == 201
    first = api.get("/views/tickets?owner=agent-li")
    assert first.status_code == 200 and first.headers["ETag"]
    tag = first.headers["ETag"]

    again = api.get("/views/tickets?owner=agent-li", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == tag
    assert again.headers["Cache-Control"] == "private, no-cache"

    plain = api.get("/views/tickets?owner=agent-li")  # a later as_of in the body, the same tag
    assert plain.json["as_of"] != first.json["as_of"] and plain.headers["ETag"] == tag

    other_query = api.get("/views/tickets?owner=agent-li&channel=email", headers={"If-None-Match": tag})
    assert other_query.status_code == 200 and other_query.headers["ETag"] != tag  # another answer, another tag

    assert api.post("/tickets", json={"customer_id": customer_id, "channel": "phone"}).status_code == 201
    moved = api.get("/views/tickets?owner=agent-li", headers={"If-None-Match": tag})
    assert moved.status_code == 200 and moved.headers["ETag"] != tag
    assert len(moved.json["items"]) == 2 and moved.json["position"] > first.json["position"]


def test_a_list_whose_rows_did_not_change_still_gets_a_new_tag_when_its_read_model_moves(api, customer_id):
    """The position is part of the tag: a write elsewhere in the log moves the read model, and the
    client is told (its copy says a position the read model has passed)."""
    assert api.post("/tickets", json={"customer_id": customer_id, "channel": "phone"}).status_code == 201
    before = api.get("/views/tickets?owner=agent-li&channel=email")
    assert before.json["items"] == []
    assert api.post("/customers", json={"kind": "individual", "tier": "general"}).status_code == 201
    after = api.get("/views/tickets?owner=agent-li&channel=email", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and after.json["items"] == [] and after.json["position"] > before.json["position"]


def test_the_kpi_dashboard_answers_304_while_nothing_changed(api, customer_id):
    query = "/dashboards/kpis?from=2025-08-01&to=2025-09-30"
    first = api.get(query, as_="lead")
    assert first.status_code == 200, first.json
    again = api.get(query, as_="lead", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert api.post("/tickets", json={"customer_id": customer_id, "channel": "phone"}).status_code == 201
    assert api.get(query, as_="lead", headers={"If-None-Match": first.headers["ETag"]}).status_code == 200
