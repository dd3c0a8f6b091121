"""Issue 22: a request that names a record loads it once — the permission check's load is the one the
handler reads or commands with — and the answers are the same as with two loads."""

from __future__ import annotations

from typing import Any


def _count_loads(ledger: Any, monkeypatch: Any) -> list[Any]:
    """A spy on the repository (the real one still answers): which aggregate ids were loaded."""
    loads: list[Any] = []
    real_get = ledger.repository.get

    def counting_get(aggregate_id: Any, *args: Any, **kwargs: Any) -> Any:
        loads.append(aggregate_id)
        return real_get(aggregate_id, *args, **kwargs)

    monkeypatch.setattr(ledger.repository, "get", counting_get)
    return loads


def test_a_scoped_read_and_a_scoped_command_load_the_record_once(api, ledger, customer_id, monkeypatch):
    created = api.post("/tickets", as_="agent", json={"customer_id": customer_id, "channel": "phone",
                                                      "summary": "宽带断了"})
    assert created.status_code == 201, created.json
    ticket = f"/tickets/{created.json['id']}"
    loads = _count_loads(ledger, monkeypatch)

    read = api.get(ticket, as_="agent")  # "own" scope: the permission check must load the ticket
    assert read.status_code == 200 and read.json["status"] == "received" and read.headers["ETag"] == '"1"'
    assert [str(i) for i in loads] == [created.json["id"]]

    loads.clear()
    answered = api.post(f"{ticket}/respond-first", as_="agent", json={"message": "已收到"})
    assert answered.status_code == 200, answered.json
    assert answered.json["first_responded"] is True and answered.headers["ETag"] == '"2"'
    assert [str(i) for i in loads] == [created.json["id"]]  # checked and commanded with one load
    assert ledger.get("ticket", created.json["id"]).first_responded  # and the change is stored


def test_a_stale_if_match_is_still_refused_with_the_shared_load(api, ledger, customer_id):
    created = api.post("/tickets", as_="agent", json={"customer_id": customer_id, "channel": "phone"})
    ticket = f"/tickets/{created.json['id']}"
    assert api.post(f"{ticket}/respond-first", as_="agent", json={}).status_code == 200
    stale = api.post(f"{ticket}/pause-clock", as_="agent", json={}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412, stale.json
    assert ledger.get("ticket", created.json["id"]).version == 2
