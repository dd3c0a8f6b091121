"""Idempotency keys that survive crashes (issue #18): the key's record is committed in the
transaction of the command's events, so after a crash a retry with the same key either gets the
first request's answer or runs the command — once, never stuck, never twice.

The crashes are real: a server process on 127.0.0.1 is killed with SIGKILL in the middle of the
request (``crashing_server.py``), on both backends; the retry goes to another app on the same database.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from eventsourcing.utils import get_topic

from domain.customer import Customer
from domain.ticket import Ticket
from ledger.idempotency import CLAIM, ClaimLost, IdempotencyStore, fingerprint

CRASHING_SERVER = Path(__file__).with_name("crashing_server.py")
LEASE = 1.0  # seconds: the crashed server's lease on its keys


def tickets_received(ledger) -> list:
    return ledger.recorder.select_notifications(start=1, limit=10_000, topics=[get_topic(Ticket.Received)])


def crash(env: dict[str, str], where: str, path: str, body: bytes, token: str, key: str) -> None:
    """POST to a server that dies with SIGKILL at ``where`` of that very request."""
    server = subprocess.Popen([sys.executable, str(CRASHING_SERVER), where, str(LEASE), json.dumps(env)],
                              stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST", headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json", "Idempotency-Key": key})
        with pytest.raises((OSError, http.client.HTTPException)):  # no answer: the process is gone
            urllib.request.urlopen(request, timeout=30)
        assert server.wait(timeout=10) == -9
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        server.stdout.close()


def post(base: str, path: str, body: bytes, token: str, key: str) -> tuple[int, dict, dict]:
    request = urllib.request.Request(base + path, data=body, method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json", "Idempotency-Key": key})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def test_a_crash_after_the_commit_answers_the_retries_without_a_second_write(env, api, ledger, customer_id, server):
    body = json.dumps({"customer_id": customer_id, "channel": "web", "summary": "断网"}).encode()
    crash(env, "after-commit", "/tickets", body, api.tokens["agent"], "crash-after-1")
    [written] = tickets_received(ledger)  # the first request's ticket is stored
    ticket = f"/tickets/{written.originator_id}"
    # Two retries at once, while the dead server's lease still runs: both wait; then one rebuilds
    # the answer from what was written and keeps it, the other gets it.
    results: list[tuple[int, dict, dict]] = []
    retries = [threading.Thread(target=lambda: results.append(post(server, "/tickets", body, api.tokens["agent"],
                                                                   "crash-after-1"))) for _ in range(2)]
    for retry in retries:
        retry.start()
    for retry in retries:
        retry.join()
    assert [status for status, _, _ in results] == [201, 201], results
    assert results[0][1] == results[1][1] == api.get(ticket).json  # the ticket as written (version 1)
    assert results[0][1]["version"] == 1 and results[0][1]["channel"] == "web"
    for _, _, headers in results:
        assert headers["Location"] == ticket and headers["ETag"] == '"1"' and headers["Idempotent-Replayed"] == "true"
    again = api.post("/tickets", headers={"Idempotency-Key": "crash-after-1"}, data=body,
                     content_type="application/json")
    assert again.status_code == 201 and again.json == results[0][1] and again.headers["Location"] == ticket
    assert len(tickets_received(ledger)) == 1  # exactly one write


def test_a_crash_after_an_action_commits_rebuilds_the_action_answer(env, api, ledger, customer_id):
    opened = api.post("/tickets", json={"customer_id": customer_id, "channel": "web"}).json
    body = json.dumps({"priority": "urgent", "complexity": "general"}).encode()
    path = f"/tickets/{opened['id']}/classify"
    crash(env, "after-commit", path, body, api.tokens["lead"], "classify-1")
    retry = api.post(path, as_="lead", headers={"Idempotency-Key": "classify-1"}, data=body,
                     content_type="application/json")
    assert retry.status_code == 200 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json["version"] == 2 and retry.json["priority"] == "urgent" and retry.headers["ETag"] == '"2"'
    assert ledger.get("ticket", opened["id"]).version == 2  # classified once: a second time would be refused


def test_a_crash_before_the_commit_frees_the_key_once_the_lease_runs_out(env, app, api, ledger, customer_id):
    body = json.dumps({"customer_id": customer_id, "channel": "web", "summary": "断网"}).encode()
    crash(env, "before-commit", "/tickets", body, api.tokens["agent"], "crash-before-1")
    assert tickets_received(ledger) == []  # nothing of the first request is stored
    store: IdempotencyStore = app.extensions["caseledger.idempotency"]
    store.wait_seconds = 0.1
    started = time.monotonic()
    early = api.post("/tickets", headers={"Idempotency-Key": "crash-before-1"}, data=body,
                     content_type="application/json")
    if time.monotonic() - started < LEASE - 0.3:  # (a slow machine may already be past the lease)
        assert early.status_code == 409 and early.headers["Retry-After"] == "1"  # its lease still runs
    store.wait_seconds = 10
    retry = api.post("/tickets", headers={"Idempotency-Key": "crash-before-1"}, data=body,
                     content_type="application/json")
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry.headers  # taken over and run
    again = api.post("/tickets", headers={"Idempotency-Key": "crash-before-1"}, data=body,
                     content_type="application/json")
    assert again.json == retry.json and again.headers["Idempotent-Replayed"] == "true"
    assert [str(n.originator_id) for n in tickets_received(ledger)] == [retry.json["id"]]  # run once


def test_a_request_that_lost_its_key_writes_nothing(app, ledger, ctx):
    store: IdempotencyStore = app.extensions["caseledger.idempotency"]
    store.lease = timedelta(milliseconds=200)
    first = store.begin("agent-li:agent", "slow-1", fingerprint("POST", "/customers?"))
    time.sleep(0.3)  # the first request stalls past its lease; a retry takes the key over
    second = store.begin("agent-li:agent", "slow-1", fingerprint("POST", "/customers?"))
    assert (first.kind, second.kind) == ("run", "run") and first.claim.token != second.claim.token
    customers = len(ledger.recorder.select_notifications(start=1, limit=10_000, topics=[get_topic(Customer.Registered)]))
    token = CLAIM.set(first.claim)
    try:
        with pytest.raises(ClaimLost):
            ledger.register_customer(ctx(), kind="individual", tier="vip", contact={"name": "钱七"})
    finally:
        CLAIM.reset(token)
    after = ledger.recorder.select_notifications(start=1, limit=10_000, topics=[get_topic(Customer.Registered)])
    assert len(after) == customers  # rolled back, events and log leaves alike
    assert first.claim.written is None


def test_a_5xx_after_a_write_keeps_the_key_for_the_answer(app, ledger, ctx):
    store: IdempotencyStore = app.extensions["caseledger.idempotency"]
    held = store.begin("agent-li:agent", "k-5xx", fingerprint("POST", "/customers?"))
    token = CLAIM.set(held.claim)
    try:
        customer = ledger.register_customer(ctx(), kind="individual", tier="vip", contact={"name": "钱七"})
    finally:
        CLAIM.reset(token)
    store.complete(held.claim, 500, {}, b"")  # e.g. the response could not be made after the commit
    retry = store.begin("agent-li:agent", "k-5xx", fingerprint("POST", "/customers?"))
    assert retry.kind == "reconstruct" and retry.claim.written.created_ids() == [str(customer.id)]


def test_a_5xx_without_a_write_releases_the_key(api, env):
    from ledger.keys import LogKeys
    from ledger.settings import Settings

    headers = {"Idempotency-Key": "checkpoint-1"}
    first = api.post("/log/checkpoints", as_="admin", headers=headers)
    assert first.status_code == 503  # no signing key yet
    again = api.post("/log/checkpoints", as_="admin", headers=headers)
    assert again.status_code == 503 and "Idempotent-Replayed" not in again.headers  # run again, not replayed
    LogKeys.from_settings(Settings.from_environ(env)).init()
    published = api.post("/log/checkpoints", as_="admin", headers=headers)
    assert published.status_code == 201 and "Idempotent-Replayed" not in published.headers
    replayed = api.post("/log/checkpoints", as_="admin", headers=headers)
    assert replayed.status_code == 201 and replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.get_data() == published.get_data()


def test_every_post_that_writes_events_can_rebuild_its_answer(app):
    from api.idempotency import REFUSE_KEYS, WRITE_NO_EVENTS, _answerable

    posts = {rule.endpoint for rule in app.url_map.iter_rules() if "POST" in (rule.methods or ())}
    assert "tickets.create" in posts and "interactions.import" in posts
    with app.test_request_context():
        assert sorted(e for e in posts - WRITE_NO_EVENTS - REFUSE_KEYS if not _answerable(e)) == []
