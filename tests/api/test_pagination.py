"""One pagination style on every list: an opaque cursor, ``next_cursor`` and ``Link: <…>; rel="next"``.

Each test makes more rows than one page holds, follows the Link headers from the first page to the
last, and checks that the pages together are exactly the whole list, in order, with no Link (and
``next_cursor: null``) on the last page.
"""

from __future__ import annotations

import re
from typing import Any

LINK = re.compile(r'^<([^>]+)>; rel="next"$')


def follow(api, url: str, as_: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Every item of a list, page by page through the Link headers; and the URLs visited."""
    items, visited = [], []
    while url:
        visited.append(url)
        response = api.get(url, as_=as_)
        assert response.status_code == 200, (url, response.json)
        items += response.json["items"]
        link = response.headers.get("Link")
        if response.json["next_cursor"] is None:
            assert link is None
            url = None
        else:
            match = LINK.match(link or "")
            assert match, link
            url = match.group(1)
            assert f"cursor={response.json['next_cursor']}" in url
        assert len(visited) < 50
    return items, visited


def customers(api, n: int) -> list[str]:
    ids = []
    for i in range(n):
        created = api.post("/customers", json={"kind": "individual", "tier": "general", "contact": {"name": f"客户{i}"}})
        assert created.status_code == 201, created.json
        ids.append(created.json["id"])
    return ids


def test_the_log_pages_by_cursor_and_link_and_the_old_after_still_works(api):
    customers(api, 5)
    everything = api.get("/events?limit=500", as_="auditor").json
    assert everything["next_cursor"] is None and len(everything["items"]) >= 5
    items, visited = follow(api, "/events?limit=2", "auditor")
    assert [e["position"] for e in items] == [e["position"] for e in everything["items"]]
    assert len(visited) == -(-len(everything["items"]) // 2)  # ceil: no empty last page when rows run out early
    first = api.get("/events?limit=2", as_="auditor").json
    legacy = api.get(f"/events?limit=2&after={first['next_after']}", as_="auditor").json  # deprecated, still served
    assert [e["position"] for e in legacy["items"]] == [e["position"] for e in everything["items"][2:4]]


def test_a_case_history_pages_by_cursor(api, customer_id):
    t = api.post("/tickets", json={"customer_id": customer_id, "channel": "phone"}).json["id"]
    assert api.post(f"/tickets/{t}/classify", as_="lead", json={"priority": "urgent", "complexity": "general"}).status_code == 200
    assert api.post(f"/tickets/{t}/assign", as_="lead", json={"handler": "agent-zhao"}).status_code == 200
    items, visited = follow(api, f"/tickets/{t}/events?limit=1", "auditor")
    assert [e["version"] for e in items] == [1, 2, 3] and len(visited) == 3


def test_a_read_model_list_keeps_its_filters_in_the_link(api):
    ids = customers(api, 3)
    for customer in ids:
        assert api.post("/tickets", json={"customer_id": customer, "channel": "phone"}).status_code == 201
    assert api.post("/tickets", json={"customer_id": ids[0], "channel": "email"}).status_code == 201
    items, visited = follow(api, "/views/tickets?channel=phone&owner=agent-li&limit=2", "agent")
    assert [row["customer_id"] for row in items] == ids  # the email ticket is filtered out on every page
    assert all("channel=phone" in url and "owner=agent-li" in url for url in visited)


def test_holds_and_retention_records_page_without_a_silent_cap(api):
    ids = customers(api, 3)
    for customer in ids:
        placed = api.post("/holds", as_="records", json={"target_kind": "customer", "target_id": customer,
                                                         "authority": "court order 17", "reason": "litigation"})
        assert placed.status_code == 201, placed.json
    holds, visited = follow(api, "/holds?limit=2", "records")
    assert [h["subject"] for h in holds] == ids and len(visited) == 2
    records, visited = follow(api, "/retention/records?limit=1", "records")
    assert [r["record_id"] for r in records] == ids and len(visited) == 3


def test_the_access_log_pages_by_cursor(api):
    ids = customers(api, 3)
    for customer in ids:
        read = api.get(f"/customers/{customer}", as_="agent", headers={"X-Access-Reason": "customer called back"})
        assert read.status_code == 200
    entries, _ = follow(api, "/access-events?limit=1", "auditor")
    assert [e["subject"] for e in entries] == ids


def test_a_cursor_of_another_list_or_a_forged_one_is_refused(api):
    customers(api, 2)
    cursor = api.get("/events?limit=1", as_="auditor").json["next_cursor"]
    assert cursor
    other = api.get(f"/holds?cursor={cursor}", as_="records")
    assert other.status_code == 400 and other.mimetype == "application/problem+json"
    assert api.get("/events?cursor=not-a-cursor", as_="auditor").status_code == 400


#: Answers with ``items`` that are one bounded whole, not a list to page through (path → why).
WHOLE_ANSWERS = {
    "/replay/{kind}/{aggregate_id}/timeline": "the events of one case, replayed as one answer",
    "/retention/report": "a dry run over the subjects due at as_of, judged together",
    "/compliance/sla-clocks/summary": "one row per SLA clock of the policy",
    "/compliance/findings/kpis": "one row per compliance rule",
}


def test_every_list_in_the_document_pages_the_one_way(api):
    """A GET whose answer holds ``items`` pages with cursor + next_cursor + Link, unless it is one of
    the bounded wholes above — so a list added later cannot bring back a second style or a cap."""
    document = api.get("/openapi.json", as_=None).json
    schemas = document["components"]["schemas"]
    offenders = []
    for path, item in document["paths"].items():
        operation = item.get("get")
        ok = (operation or {}).get("responses", {}).get("200", {})
        ref = ok.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
        properties = schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {})
        if "items" not in properties or path in WHOLE_ANSWERS:
            continue
        query = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        if not ({"next_cursor"} <= set(properties) and {"cursor", "limit"} <= query and "Link" in ok.get("headers", {})):
            offenders.append(path)
    assert not offenders, f"lists without cursor, limit, next_cursor and Link: {offenders}"
