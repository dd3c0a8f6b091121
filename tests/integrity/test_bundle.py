"""Sealed auditor bundles, attacked as an insider would: every edit of the files — even with every
hash the forger can reach recomputed — fails with a message naming the file, line and reason, and
an untouched bundle passes only against the pinned key. Both backends (the ``ledger`` fixture)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ledger.bootstrap import transparency_log
from ledger.integrity.bundle import BundleInvalid, manifest_text, verify_bundle
from ledger.integrity.checkpoint import CheckpointError, generate_key, public_key_to_text, sign_note
from ledger.integrity.trust import TrustSet, UntrustedSignature
from ledger.keys import LogKeys
from ledger.settings import Settings
from services.export import ExportError, Scope, write_bundle

NOW = datetime(2025, 10, 1, tzinfo=timezone.utc)


@pytest.fixture
def made(ledger, env, ctx, tmp_path):
    keys = LogKeys.from_settings(Settings.from_environ(env))
    keys.init()
    customer = ledger.register_customer(ctx(), kind="individual", tier="vip", contact={"name": "孙八",
                                                                                        "phone": "13800000000"})
    other = ledger.register_customer(ctx(), kind="individual", tier="general", contact={"name": "周九"})
    for cid in (customer.id, other.id):
        ticket = ledger.open_ticket(ctx(), customer_id=str(cid), channel="web", summary="slow")
        ledger.act("ticket", ticket.id, "classify", ctx(), {"priority": "normal", "complexity": "general",
                                                             "high_risk": False})
    log = transparency_log(ledger, env)
    out = tmp_path / "bundle"
    manifest = write_bundle(log, ledger, Scope("customer", str(customer.id)), out, NOW)
    assert manifest["events"] == 3  # Registered + the customer's ticket's Received and Classified
    return {"out": out, "customer": str(customer.id), "keys": keys, "log": log, "ledger": ledger,
            "trust": TrustSet([keys.verifier_text()]), "tmp": tmp_path}


def lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


def forge(out: Path, edit) -> None:
    """Edit events.jsonl and re-seal it the way a forger can: recompute its hash in the manifest and
    re-sign the manifest with a key of the forger's own (the log key is not theirs)."""
    rows = lines(out)
    edit(rows)
    (out / "events.jsonl").write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    text = (out / "manifest.note").read_text()
    manifest = json.loads(text.split("\n")[1])
    manifest["events_sha256"] = hashlib.sha256((out / "events.jsonl").read_bytes()).hexdigest()
    manifest["events"] = len(rows)
    (out / "manifest.note").write_text(sign_note(manifest_text(manifest), generate_key(), manifest["origin"]))


def test_untouched_bundle_verifies_with_the_pinned_key(made):
    summary = verify_bundle(made["out"], made["trust"])
    assert summary["events"] == 3 and summary["tree_size"] == 6
    rows = lines(made["out"])
    assert {row["event"]["aggregate_id"] for row in rows} - {made["customer"]}  # the ticket's events too
    registered = rows[0]["event"]
    assert registered["personal"]["fields"] == {"name": "[sealed]", "phone": "[sealed]"}
    assert "孙八" not in (made["out"] / "events.jsonl").read_text()  # personal data never in clear


def test_bundle_is_refused_without_a_pinned_key_or_with_another(made):
    stranger = TrustSet([public_key_to_text(generate_key().public_key(), made["keys"].origin)])
    with pytest.raises(UntrustedSignature, match=r"not a pinned key"):
        verify_bundle(made["out"], stranger)


@pytest.mark.parametrize("edit, reason", [
    (lambda rows: rows[1]["event"]["meta"].update(actor_id="someone-else"),
     r"events.jsonl line 2: readable field event.meta.actor_id differs"),
    (lambda rows: rows.pop(1), r"line 2: .* v2 follows v0|line 2: .*versions in between"),
    (lambda rows: rows.pop(), r"ends at v1, the signed manifest says v2"),
    (lambda rows: rows.insert(0, rows.pop(1)), r"line 2: leaf .* comes after leaf .*reordered"),
    (lambda rows: rows.append(dict(rows[-1])), r"line 4: leaf .* comes after leaf .*duplicated"),
    (lambda rows: rows[0].update(state_b64=base64.b64encode(
        base64.b64decode(rows[0]["state_b64"]).replace(b"vip", b"svip")).decode()),
     r"line 1: .* is not leaf 0 of the signed log"),
])
def test_each_edit_fails_naming_file_line_and_reason(made, edit, reason):
    out = made["out"]
    forge(out, edit)
    with pytest.raises(UntrustedSignature):  # the forger's re-signed manifest is refused first …
        verify_bundle(out, made["trust"])
    # … and even a forger holding the log key (the operator) cannot make it pass:
    text = (out / "manifest.note").read_text()
    signing = made["keys"].signing_key()
    (out / "manifest.note").write_text(sign_note(text.split("\n\n")[0] + "\n", signing, made["keys"].origin))
    with pytest.raises(BundleInvalid, match=reason):
        verify_bundle(out, made["trust"])


def test_edit_without_resigning_fails_on_the_manifest_hash(made):
    out = made["out"]
    (out / "events.jsonl").write_text((out / "events.jsonl").read_text().replace('"leaf_index": 0',
                                                                                  '"leaf_index": 1'))
    with pytest.raises(BundleInvalid, match="events.jsonl: does not match the hash in the signed manifest"):
        verify_bundle(out, made["trust"])


def test_checkpoint_swapped_for_another_fails(made):
    out, log = made["out"], made["log"]
    _, newer = log.publish_checkpoint(datetime(2025, 10, 2, tzinfo=timezone.utc))
    (out / "checkpoint.note").write_text(newer)
    with pytest.raises(BundleInvalid, match="checkpoint.note"):
        verify_bundle(out, made["trust"])


def test_bundle_of_another_ledger_is_untrusted(made, tmp_path):
    """A throwaway ledger with its own key makes a bundle that verifies only with its own key."""
    foreign = TrustSet([public_key_to_text(generate_key().public_key(), "elsewhere.caseledger/log-1")])
    with pytest.raises(UntrustedSignature, match=made["keys"].origin.replace(".", r"\.")):
        verify_bundle(made["out"], foreign)


def test_foreign_origin_in_the_manifest_fails(made):
    out = made["out"]
    text = (out / "manifest.note").read_text().split("\n\n")[0] + "\n"
    manifest = json.loads(text.split("\n")[1])
    manifest["origin"] = "elsewhere.caseledger/log-1"
    (out / "manifest.note").write_text(sign_note(manifest_text(manifest), made["keys"].signing_key(),
                                                 made["keys"].origin))
    with pytest.raises(BundleInvalid, match="origin 'elsewhere.caseledger/log-1' is not the signing key's"):
        verify_bundle(out, made["trust"])


def test_unknown_id_is_an_error_and_writes_nothing(made):
    out = made["tmp"] / "nothing"
    with pytest.raises(ExportError, match="no customer"):
        write_bundle(made["log"], made["ledger"], Scope("customer", "00000000-0000-0000-0000-000000000000"), out, NOW)
    assert not out.exists()


def test_range_bundle_must_be_contiguous(made):
    out = made["tmp"] / "range"
    manifest = write_bundle(made["log"], made["ledger"], Scope("range", None, 2, 5), out, NOW)
    assert manifest["leaves"] == [1, 4] and verify_bundle(out, made["trust"])["events"] == 4
    forge(out, lambda rows: rows.pop(2))
    text = (out / "manifest.note").read_text().split("\n\n")[0] + "\n"
    (out / "manifest.note").write_text(sign_note(text, made["keys"].signing_key(), made["keys"].origin))
    with pytest.raises(BundleInvalid, match="leaves 1..4, every one of them"):
        verify_bundle(out, made["trust"])


def test_rotation_old_bundles_verify_with_the_old_key_and_new_ones_via_the_chain(made):
    old_key = made["keys"].verifier_text()
    made["log"].rotate_key(NOW)
    assert made["keys"].verifier_text() != old_key and made["keys"].retired() == [old_key]
    assert verify_bundle(made["out"], TrustSet([old_key]))["events"] == 3  # made before the rotation
    newer = made["tmp"] / "after"
    write_bundle(made["log"], made["ledger"], Scope("customer", made["customer"]), newer, NOW)
    assert (newer / "rotations.jsonl").exists()
    assert verify_bundle(newer, TrustSet([old_key]))["events"] == 3  # old key → announced new key
    with pytest.raises(UntrustedSignature):
        (newer / "rotations.jsonl").unlink()
        verify_bundle(newer, TrustSet([old_key]))
    assert made["log"].verify().ok  # checkpoints under both keys verify from the local key files


def test_stored_checkpoint_signed_with_another_key_fails_verify(ledger, env, ctx):
    keys = LogKeys.from_settings(Settings.from_environ(env))
    keys.init()
    ledger.register_customer(ctx(), kind="individual", tier="vip", contact={})
    log = transparency_log(ledger, env)
    log.publish_checkpoint(NOW)
    keys.init(force=True)  # the operator swaps keys without a rotation: old checkpoints no longer verify
    with pytest.raises(CheckpointError):
        log.verify()


def test_command_line_export_and_verify_bundle(made, token_env, tmp_path):
    from click.testing import CliRunner

    from cli.main import main

    env = token_env("auditor")  # an export is an auditor's act, with a token like any other

    def run(*args):
        result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
        return result.exit_code, result.output

    out = tmp_path / "cli-bundle"
    assert run("export", "--scope", "customer", "--id", made["customer"], "--out", str(out))[0] == 0
    code, text = run("verify-bundle", str(out))
    assert code == 3 and "no pinned key" in text and made["keys"].origin in text
    pinned = tmp_path / "log-key.txt"
    pinned.write_text(made["keys"].verifier_text() + "\n")
    code, text = run("verify-bundle", str(out), "--trust", str(pinned))
    assert code == 0 and "OK 3 events" in text
    stranger = tmp_path / "stranger.txt"
    stranger.write_text(public_key_to_text(generate_key().public_key(), made["keys"].origin) + "\n")
    assert run("verify-bundle", str(out), "--trust", str(stranger))[0] == 3
    code, text = run("export", "--scope", "ticket", "--id", "no-such-ticket", "--out", str(tmp_path / "x"))
    assert code == 1 and "no ticket no-such-ticket" in text and "Traceback" not in text


# -- issue #20: case bundles with related records, period bundles ------------------------------------
def resign(out: Path, keys, change=None) -> None:
    """Re-sign the manifest with the log key itself (an operator forging), after ``change`` to it."""
    manifest = json.loads((out / "manifest.note").read_text().split("\n")[1])
    manifest["events_sha256"] = hashlib.sha256((out / "events.jsonl").read_bytes()).hexdigest()
    manifest["events"] = len(lines(out))
    if change:
        change(manifest)
    (out / "manifest.note").write_text(sign_note(manifest_text(manifest), keys.signing_key(), keys.origin))


@pytest.fixture
def case_bundle(made, ctx):
    ledger = made["ledger"]
    contact = str(ledger.receive_interaction(ctx(), channel="phone", direction="inbound",
                                             customer_id=made["customer"]).id)
    ledger.act("interaction", contact, "register", ctx(), {"agent_id": "agent-li"})
    ledger.act("interaction", contact, "route", ctx(), {"queue": "broadband"})
    ticket = str(ledger.open_ticket(ctx(), customer_id=made["customer"], channel="phone", interaction_id=contact).id)
    out = made["tmp"] / "case"
    manifest = write_bundle(made["log"], ledger, Scope("ticket", ticket), out, NOW)
    assert manifest["related"] == {contact: "interaction"} and verify_bundle(out, made["trust"])
    return {**made, "out": out, "contact": contact, "ticket": ticket}


def test_dropped_related_record_fails_even_resigned_with_the_log_key(case_bundle):
    out, keys, contact = case_bundle["out"], case_bundle["keys"], case_bundle["contact"]
    kept = [row for row in lines(out) if row["originator_id"] != contact]
    (out / "events.jsonl").write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in kept))
    resign(out, keys)
    with pytest.raises(BundleInvalid, match=f"{contact} ends at v0, the signed manifest says v4"):
        verify_bundle(out, case_bundle["trust"])

    def forget(manifest):  # … and dropped from the signed claims as well
        manifest["aggregates"].pop(contact)
        manifest["related"].pop(contact)

    resign(out, keys, forget)
    with pytest.raises(BundleInvalid, match=f"name {contact} as their origin, which is not in the bundle"):
        verify_bundle(out, case_bundle["trust"])


def test_related_claim_must_match_the_aggregates(case_bundle):
    out, keys = case_bundle["out"], case_bundle["keys"]
    resign(out, keys, lambda m: m["related"].update({case_bundle["customer"]: "customer"}))
    with pytest.raises(BundleInvalid, match="not exactly the case and its related records"):
        verify_bundle(out, case_bundle["trust"])


def test_period_bundle_attacks(made):
    out, keys = made["tmp"] / "period", made["keys"]
    events = [e for page in [made["ledger"].log(limit=100)] for _, e in page]
    times = sorted(datetime.fromisoformat(e.meta["occurred_at"]) for e in events)
    start, end = times[1], times[-1]  # leaves out the first and the last event
    manifest = write_bundle(made["log"], made["ledger"], Scope("period", from_time=start, to_time=end), out, NOW)
    assert manifest["events"] == len(times) - 2 and verify_bundle(out, made["trust"])["events"] == manifest["events"]
    dropped = lines(out)
    (out / "events.jsonl").write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in dropped[:-1]))
    resign(out, keys)
    with pytest.raises(BundleInvalid, match=f"lists leaf {dropped[-1]['leaf_index']} of the period, which is missing"):
        verify_bundle(out, made["trust"])
    (out / "events.jsonl").write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in dropped))
    resign(out, keys, lambda m: m["scope"].update({"to": dropped[-1]["event"]["meta"]["occurred_at"]}))
    with pytest.raises(BundleInvalid, match=f"line {len(dropped)}: happened at .* outside the signed period"):
        verify_bundle(out, made["trust"])
