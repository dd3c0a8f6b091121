"""Auditor bundles verify offline; an edited event or a checkpoint signed with another key does not."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from cli.integrity import _in_scope
from ledger.bootstrap import transparency_log
from ledger.integrity.checkpoint import CheckpointError, generate_key, public_key_to_text
from ledger.keys import LogKeys
from ledger.records import event_record
from ledger.settings import Settings
from services.export import BundleInvalid, verify_bundle, write_bundle

NOW = datetime(2025, 10, 1, tzinfo=timezone.utc)


@pytest.fixture
def bundle(ledger, env, ctx, tmp_path) -> tuple[Path, str]:
    LogKeys.from_settings(Settings.from_environ(env)).init()
    customer = ledger.register_customer(ctx(), kind="individual", tier="vip", contact={"name": "孙八"})
    other = ledger.register_customer(ctx(), kind="individual", tier="general", contact={"name": "周九"})
    for cid in (customer.id, other.id):
        ticket = ledger.open_ticket(ctx(), customer_id=str(cid), channel="web", summary="slow")
        ledger.act("ticket", ticket.id, "classify", ctx(), {"priority": "normal", "complexity": "general",
                                                             "high_risk": False})
    log = transparency_log(ledger, env)
    out = tmp_path / "bundle"
    events = list(_in_scope(ledger, "customer", str(customer.id), 1, None))
    manifest = write_bundle(log, events, out, {"scope": "customer", "id": str(customer.id)}, NOW, event_record)
    assert manifest["events"] == 3  # Registered + the customer's ticket's Received and Classified
    return out, str(customer.id)


def test_bundle_verifies_offline(bundle):
    out, customer_id = bundle
    summary = verify_bundle(out)
    assert summary["events"] == 3 and summary["tree_size"] == 6
    lines = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert {line["event"]["aggregate_id"] for line in lines} - {customer_id}  # the ticket's events too
    assert all(line["proof"] for line in lines)


def rewrite(out: Path, edit) -> None:
    """Edit events.jsonl and, like a careful forger, fix up the manifest's hash."""
    lines = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    edit(lines)
    (out / "events.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["sha256"]["events.jsonl"] = hashlib.sha256((out / "events.jsonl").read_bytes()).hexdigest()
    (out / "manifest.json").write_text(json.dumps(manifest))


def test_edited_event_fails(bundle):
    out, _ = bundle
    import base64

    def edit(lines):
        state = base64.b64decode(lines[1]["state_b64"]).replace(b"web", b"app")
        lines[1]["state_b64"] = base64.b64encode(state).decode()

    rewrite(out, edit)
    with pytest.raises(BundleInvalid, match="line 2"):
        verify_bundle(out)


def test_edited_file_without_manifest_fix_fails(bundle):
    out, _ = bundle
    (out / "events.jsonl").write_text((out / "events.jsonl").read_text().replace('"leaf_index": 0', '"leaf_index": 1'))
    with pytest.raises(BundleInvalid, match="manifest"):
        verify_bundle(out)


def test_checkpoint_with_wrong_key_fails(bundle):
    out, _ = bundle
    stranger = public_key_to_text(generate_key().public_key(), "caseledger.local/log")
    (out / "log-verifier.txt").write_text(stranger + "\n")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["sha256"]["log-verifier.txt"] = hashlib.sha256((out / "log-verifier.txt").read_bytes()).hexdigest()
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleInvalid, match="checkpoint"):
        verify_bundle(out)


def test_stored_checkpoint_signed_with_another_key_fails_verify(ledger, env, ctx):
    keys = LogKeys.from_settings(Settings.from_environ(env))
    keys.init()
    ledger.register_customer(ctx(), kind="individual", tier="vip", contact={})
    log = transparency_log(ledger, env)
    log.publish_checkpoint(NOW)
    keys.init(force=True)  # the operator swaps keys: old checkpoints no longer verify
    with pytest.raises(CheckpointError):
        log.verify()
