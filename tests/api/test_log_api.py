"""The transparency log over HTTP: checkpoints and proofs that verify with the pure RFC 9162 code."""

from __future__ import annotations

from ledger.integrity.checkpoint import open_note
from ledger.integrity.merkle import verify_consistency, verify_inclusion
from ledger.keys import LogKeys
from ledger.settings import Settings


def test_checkpoint_and_proofs_verify(api, env, ledger, customer_id):
    LogKeys.from_settings(Settings.from_environ(env)).init()
    assert api.get("/log/checkpoint", as_="auditor").status_code == 404  # nothing published yet
    assert api.post("/log/checkpoints", as_="agent").status_code == 403
    first = api.post("/log/checkpoints", as_="admin")
    assert first.status_code == 201
    ticket = api.post("/tickets", json={"customer_id": customer_id, "channel": "web"}).json
    api.post(f"/tickets/{ticket['id']}/classify", as_="lead", json={"priority": "urgent", "complexity": "general"})
    assert api.post("/log/checkpoints", as_="admin").status_code == 201

    note = api.get("/log/checkpoint", as_="auditor").get_data(as_text=True)
    name, key = LogKeys.from_settings(Settings.from_environ(env)).public_key()
    checkpoint = open_note(note, key, name)
    old = open_note(first.get_data(as_text=True), key, name)
    # the first checkpoint covers the test's API tokens and the customer; then the ticket's two events
    assert old.size == ledger.recorder.max_notification_id() - 2 and checkpoint.size == old.size + 2

    inclusion = api.get(f"/log/proof/inclusion?aggregate_id={ticket['id']}&version=2&tree_size={checkpoint.size}",
                        as_="auditor").json
    assert inclusion["root"] == checkpoint.root.hex() and inclusion["leaf_index"] == old.size + 1
    assert verify_inclusion(bytes.fromhex(inclusion["leaf_hash"]), inclusion["leaf_index"], checkpoint.size,
                            [bytes.fromhex(h) for h in inclusion["proof"]], checkpoint.root)

    consistency = api.get(f"/log/proof/consistency?old={old.size}&new={checkpoint.size}", as_="auditor").json
    assert verify_consistency(old.size, checkpoint.size, old.root, checkpoint.root,
                              [bytes.fromhex(h) for h in consistency["proof"]])


def test_bad_proof_requests_are_problems(api, env, customer_id):
    response = api.get(f"/log/proof/inclusion?aggregate_id={customer_id}&version=9", as_="auditor")
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert api.get("/log/proof/consistency?old=5&new=2", as_="auditor").status_code == 422
    assert api.get("/log/proof/consistency?old=-1", as_="auditor").status_code == 422
    assert api.post("/log/checkpoints", as_="admin").status_code == 503  # no signing key configured
