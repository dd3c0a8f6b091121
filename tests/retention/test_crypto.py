"""Per-subject sealing of personal data: what is stored, what binds it, what a wrong key does."""

from __future__ import annotations

import base64
import json
import os
import uuid

import pytest

from ledger.bootstrap import build
from ledger.crypto import KeyEncryptionKey, KeyUnavailable, SubjectKeys


def stored_state(ledger, aggregate_id, version=1) -> dict:
    stored = ledger.recorder.select_events(aggregate_id, gt=version - 1, lte=version)[0]
    return json.loads(stored.state)


def test_stored_events_hold_names_and_ciphertext_only(ledger, ctx):
    customer = ledger.register_customer(ctx(), kind="individual", tier="vip",
                                        contact={"name": "司马光", "email": "sima@example.cn"})
    state = stored_state(ledger, customer.id)
    assert state["personal"]["subject"] == str(customer.id)
    assert state["personal"]["names"] == ["email", "name"]
    assert "司马光" not in json.dumps(state, ensure_ascii=False) and "sima@" not in json.dumps(state)
    assert state["tier"] == "vip"  # facts stay readable
    assert ledger.contact_details(customer.id) == {"name": "司马光", "email": "sima@example.cn"}


def test_ciphertext_is_bound_to_its_event(ledger, ctx):
    """A sealed blob copied into another event (same subject) does not decrypt there."""
    customer = ledger.register_customer(ctx(), kind="individual", tier="vip", contact={"name": "甲"})
    ledger.act("customer", customer.id, "update_contact", ctx(), {"contact": {"name": "乙"}})
    first = ledger.recorder.select_events(customer.id, gt=0, lte=1)[0]
    second = ledger.recorder.select_events(customer.id, gt=1, lte=2)[0]
    moved = json.loads(second.state)
    moved["personal"]["sealed"] = json.loads(first.state)["personal"]["sealed"]
    forged = type(second)(originator_id=second.originator_id, originator_version=2, topic=second.topic,
                          state=json.dumps(moved).encode())
    with pytest.raises(KeyUnavailable, match="does not decrypt"):
        ledger.mapper.to_domain_event(forged)


def test_wrong_kek_is_reported_clearly(env, ctx):
    first = build(env)
    customer = first.register_customer(ctx(), kind="individual", tier="vip", contact={"name": "丙"})
    first.close()
    other = dict(env, CASELEDGER_KEK=base64.b64encode(os.urandom(32)).decode())
    second = build(other)
    try:
        with pytest.raises(KeyUnavailable, match="wrapped by key-encryption key"):
            second.contact_details(customer.id)
    finally:
        second.close()


def test_first_key_is_shared_by_concurrent_writers(ledger):
    kek = KeyEncryptionKey(os.urandom(32))
    a = SubjectKeys(ledger.recorder, kek, cache_seconds=0)
    b = SubjectKeys(ledger.recorder, kek, cache_seconds=0)
    subject = str(uuid.uuid4())
    assert a.key_for_writing(subject) == b.key_for_writing(subject) == a.key_for_reading(subject)


def test_facts_mapper_leaves_personal_sealed(ledger, ctx):
    customer = ledger.register_customer(ctx(), kind="individual", tier="vip", contact={"name": "丁"})
    stored = ledger.recorder.select_events(customer.id, gt=0, lte=1)[0]
    event = ledger.facts_mapper().to_domain_event(stored)
    assert set(event.personal) == {"subject", "names", "sealed"} and event.tier == "vip"
