"""Checkpoints held outside the database catch what the database alone cannot: an operator who
truncates the log, or rewrites it and re-signs every stored checkpoint with the log key they hold.
Both backends; the attacks are made below the application, triggers off (see test_tamper)."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner
from test_tamper import Tamperer

from cli.main import main
from ledger.bootstrap import Settings, transparency_log
from ledger.integrity.checkpoint import generate_key, public_key_to_text, sign
from ledger.integrity.fastpath import tree_levels
from ledger.integrity.merkle import STORED_LEVEL
from ledger.integrity.trust import TrustSet
from ledger.keys import LogKeys

NOW = datetime(2025, 10, 1, tzinfo=timezone.utc)


@pytest.fixture
def setup(ledger, env, ctx, tmp_path):
    settings = Settings.from_environ(env)
    LogKeys.from_settings(settings).init()
    records = [(ctx(), {"channel": "email", "direction": "inbound", "external_ref": f"m-{n}", "content": f"msg {n}"})
               for n in range(37)]
    ledger.import_interactions(records, batch_size=10)
    log = transparency_log(ledger, env)
    log.publish_checkpoint(NOW)
    kept = tmp_path / "auditor-copy"  # the published note, copied away from the operator's machine
    shutil.copytree(settings.checkpoint_dir, kept)
    assert sorted(p.name for p in kept.iterdir())[-1] == "latest.note"
    return {"log": log, "env": env, "kept": kept, "tamper": Tamperer(settings, log), "settings": settings}


def cli(env, *args):
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def truncate_tail(s) -> int:
    """Delete the last event, its leaf, every node and stored checkpoint that covers it."""
    log, t = s["log"], s["tamper"]
    size = log.size()
    position = t.run("SELECT notification_id FROM {leaves} WHERE leaf_index = ?", (size - 1,))[0][0]
    t.run("DELETE FROM {leaves} WHERE leaf_index = ?", (size - 1,))
    t.run("DELETE FROM {events} WHERE {nid} = ?", (position,))
    for level, idx in t.run("SELECT level, idx FROM {nodes}"):
        if (idx + 1) << level > size - 1:
            t.run("DELETE FROM {nodes} WHERE level = ? AND idx = ?", (level, idx))
    t.run("DELETE FROM {checkpoints} WHERE tree_size >= ?", (size,))
    return size


def external(s):
    trust = TrustSet([LogKeys.from_settings(s["settings"]).verifier_text()])
    return [trust.open_checkpoint((s["kept"] / "latest.note").read_text())[0]]


def test_truncated_tail_passes_alone_and_fails_against_the_kept_checkpoint(setup):
    size = truncate_tail(setup)
    log = setup["log"]
    assert log.verify().ok  # what the database alone says: nothing to see
    report = log.verify(external=external(setup))
    assert not report.ok and report.first_problem.leaf_index == size - 1
    assert f"leaves {size - 1}..{size - 1} are missing" in report.first_problem.description
    code, out = cli(setup["env"], "verify", "--since", str(setup["kept"]))
    assert code == 1 and "are missing" in out and "Traceback" not in out
    assert cli(setup["env"], "verify")[0] == 0


def test_rewritten_and_resigned_history_fails_against_the_kept_checkpoint(setup):
    """The operator holds the signing key: they rewrite an event, rehash everything and re-sign."""
    log, t = setup["log"], setup["tamper"]
    from uuid import UUID

    from ledger.integrity.leaf import encode_leaf
    from ledger.integrity.merkle import leaf_hash

    position, oid, version, topic, state = t.run(
        "SELECT e.{nid}, e.originator_id, e.originator_version, e.topic, e.state FROM {events} e "
        "JOIN {leaves} l ON l.notification_id = e.{nid} WHERE l.leaf_index = 5")[0]
    forged = bytes(state).replace(b"email", b"phone")
    assert forged != bytes(state)
    t.run("UPDATE {events} SET state = ? WHERE {nid} = ?", (forged, position))
    t.run("UPDATE {leaves} SET leaf_hash = ? WHERE leaf_index = 5",
          (leaf_hash(encode_leaf(UUID(str(oid)), version, topic, forged)),))
    levels = tree_levels([bytes(h) for (h,) in t.run("SELECT leaf_hash FROM {leaves} ORDER BY leaf_index")])
    for level, idx in t.run("SELECT level, idx FROM {nodes}"):
        assert level >= STORED_LEVEL
        t.run("UPDATE {nodes} SET hash = ? WHERE level = ? AND idx = ?", (levels[level][idx], level, idx))
    t.run("DELETE FROM {checkpoints}")
    log.publish_checkpoint(datetime(2025, 10, 2, tzinfo=timezone.utc))
    assert log.verify().ok  # consistent with itself and freshly signed
    report = log.verify(external=external(setup))
    assert not report.ok and "changed after it was signed" in report.first_problem.description
    code, out = cli(setup["env"], "verify", "--since", str(setup["kept"] / "latest.note"))
    assert code == 1 and "no longer matches" in out


def test_a_kept_checkpoint_signed_by_another_key_is_untrusted(setup, tmp_path):
    forged = tmp_path / "forged.note"
    checkpoint = external(setup)[0]
    forged.write_text(sign(checkpoint, generate_key(), checkpoint.origin))
    code, out = cli(setup["env"], "verify", "--since", str(forged))
    assert code == 3 and "not a pinned key" in out


def test_pinned_trust_file_is_what_verify_trusts(setup, tmp_path):
    pinned = tmp_path / "pinned.txt"
    pinned.write_text(public_key_to_text(generate_key().public_key(), setup["log"].keys.origin) + "\n")
    code, out = cli(setup["env"], "verify", "--trust", str(pinned))
    assert code == 3 and "not a pinned key" in out
    pinned.write_text(LogKeys.from_settings(setup["settings"]).verifier_text() + "\n")
    assert cli(setup["env"], "verify", "--trust", str(pinned))[0] == 0


def test_checkpoint_out_writes_the_note(setup, tmp_path):
    out_file = tmp_path / "cp.note"
    code, printed = cli(setup["env"], "checkpoint", "--out", str(out_file))
    assert code == 0 and out_file.read_text() == printed
    assert cli(setup["env"], "verify", "--since", str(out_file))[0] == 0


def test_every_installation_gets_its_own_origin(tmp_path):
    """No shared default origin: two keys init'ed with nothing configured name two different logs,
    a configured origin is used, and a setting that contradicts the key is refused."""
    from ledger.keys import KeyMissing

    made = [LogKeys.from_settings(Settings.from_environ({"CASELEDGER_HOME": str(tmp_path / name)}))
            for name in ("a", "b")]
    origins = [keys.init().split("+")[0] for keys in made]
    assert origins[0] != origins[1] and all(".caseledger/log-" in o for o in origins)
    assert "caseledger.local/log" not in origins
    configured = LogKeys.from_settings(Settings.from_environ({"CASELEDGER_HOME": str(tmp_path / "c"),
                                                              "CASELEDGER_LOG_ORIGIN": "ledger.example.com/cs"}))
    configured.init()
    assert configured.origin == "ledger.example.com/cs"
    contradicted = LogKeys.from_settings(Settings.from_environ({"CASELEDGER_HOME": str(tmp_path / "c"),
                                                                "CASELEDGER_LOG_ORIGIN": "other.example/log"}))
    with pytest.raises(KeyMissing, match="cannot change once the key exists"):
        contradicted.origin
