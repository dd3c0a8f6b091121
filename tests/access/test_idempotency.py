"""Idempotency-Key: a retried POST returns the first response and writes nothing more — also when
50 identical requests race over real HTTP against a threaded server."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

from eventsourcing.utils import get_topic

from domain.ticket import Ticket
from ledger.idempotency import IdempotencyStore, fingerprint


def post(base: str, path: str, body: dict, token: str, key: str) -> tuple[int, dict, dict]:
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json", "Idempotency-Key": key})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def tickets_received(ledger) -> int:
    return len(ledger.recorder.select_notifications(start=1, limit=10_000, topics=[get_topic(Ticket.Received)]))


def test_fifty_concurrent_identical_posts_write_once(server, api, ledger, customer_id):
    body = {"customer_id": customer_id, "channel": "web", "summary": "重复提交"}
    barrier = threading.Barrier(50)
    results: list[tuple[int, dict, dict]] = []

    def attempt() -> None:
        barrier.wait()
        results.append(post(server, "/tickets", body, api.tokens["agent"], "retry-7f3a"))

    threads = [threading.Thread(target=attempt) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [status for status, _, _ in results] == [201] * 50
    assert len({b["id"] for _, b, _ in results}) == 1
    assert sum(h.get("Idempotent-Replayed") == "true" for _, _, h in results) == 49
    assert {h["Location"] for _, _, h in results} == {f"/tickets/{results[0][1]['id']}"}
    assert tickets_received(ledger) == 1


def test_same_key_other_body_or_other_caller(api, ledger, customer_id):
    headers = {"Idempotency-Key": "k-1"}
    first = api.post("/tickets", headers=headers, json={"customer_id": customer_id, "channel": "web"})
    again = api.post("/tickets", headers=headers, json={"customer_id": customer_id, "channel": "web"})
    assert first.status_code == again.status_code == 201 and first.json == again.json
    assert again.headers["ETag"] == first.headers["ETag"] and again.headers["Idempotent-Replayed"] == "true"
    other = api.post("/tickets", headers=headers, json={"customer_id": customer_id, "channel": "app"})
    assert other.status_code == 422 and other.json["type"].endswith("idempotency-key-reused")
    theirs = api.post("/tickets", as_="agent2", headers=headers, json={"customer_id": customer_id, "channel": "app"})
    assert theirs.status_code == 201 and theirs.json["id"] != first.json["id"]  # keys are scoped per caller
    assert tickets_received(ledger) == 2
    # refusals are replayed too: same key, same (invalid) request
    bad = {"Idempotency-Key": "k-2"}
    assert api.post("/tickets", headers=bad, json={"channel": "web"}).status_code == 422
    assert api.post("/tickets", headers=bad, json={"channel": "web"}).headers["Idempotent-Replayed"] == "true"
    assert api.post("/tickets", headers={"Idempotency-Key": "bad key"}, json={}).status_code == 400


def test_a_key_still_in_progress_is_409(app, api, ledger, customer_id, tokens):
    store: IdempotencyStore = app.extensions["caseledger.idempotency"]
    store.wait_seconds = 0.05
    body = json.dumps({"customer_id": customer_id, "channel": "web"})
    caller = tokens[0].caller(api.tokens["agent"])
    held = store.begin(f"{caller.actor_id}:{caller.role}", "slow-1",
                       fingerprint("POST", "/tickets?", "application/json", body.encode()))
    assert held.kind == "run"  # someone else holds it and has not finished
    response = api.post("/tickets", headers={"Idempotency-Key": "slow-1"}, data=body, content_type="application/json")
    assert response.status_code == 409 and response.headers["Retry-After"] == "1"
    assert tickets_received(ledger) == 0
