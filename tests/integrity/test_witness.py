"""A witness cosigns a real log's checkpoints as it grows, and refuses rollbacks, forks and strangers —
on SQLite and PostgreSQL; the ``caseledger witness`` commands end to end."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import stat
import subprocess
import sys
import threading
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from cli.main import main
from ledger.bootstrap import build, transparency_log
from ledger.integrity.checkpoint import Checkpoint, generate_key, open_note, sign
from ledger.integrity.cosignature import verify_cosignatures
from ledger.keys import LogKeys
from ledger.settings import Settings
from services.witness import (
    LATEST_FILE,
    LOCK_FILE,
    Witness,
    WitnessError,
    WitnessRefused,
)

NOW = datetime(2025, 10, 1, tzinfo=timezone.utc)
T = 1_760_000_000
NAME = "witness.test/w1"


def grow(ledger, ctx, n: int) -> None:
    for i in range(n):
        ledger.register_customer(ctx(), kind="individual", tier="general", contact={"name": f"客户{i}"})


@pytest.fixture
def log_vkey(env) -> str:
    return LogKeys.from_settings(Settings.from_environ(env)).init()


@pytest.fixture
def log(ledger, env, log_vkey):
    return transparency_log(ledger, env)


@pytest.fixture
def witness(tmp_path, log_vkey) -> Witness:
    return Witness.init(tmp_path / "witness", NAME, log_vkey)


@pytest.fixture
def fork_env(env, tmp_path, request):
    """A second, empty database with the same home, hence the same log key and origin."""
    url = env["CASELEDGER_DATABASE_URL"]
    if url.startswith("sqlite"):
        yield {**env, "CASELEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'fork.db'}"}
        return
    dsn = request.getfixturevalue("pg_dsn")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield {**env, "CASELEDGER_DATABASE_URL": f"{dsn}{'&' if '?' in dsn else '?'}schema={schema}"}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def cosigned_by_witness(note: str, witness: Witness) -> bool:
    return verify_cosignatures(note, [(witness.name, witness.public_key)], 1) == [witness.name]


def test_cosigns_successive_checkpoints(ledger, ctx, log, witness, tmp_path):
    grow(ledger, ctx, 3)
    first, note1 = log.publish_checkpoint(NOW)
    cosigned1 = witness.cosign(note1, [], T)  # trust on first use
    assert cosigned1.startswith(note1) and cosigned_by_witness(cosigned1, witness)
    origin, log_public_key = log.keys.public_key()
    assert open_note(cosigned1, log_public_key, origin) == first  # the log's signature still opens
    for step in (1, 4, 9):
        grow(ledger, ctx, step)
        old = witness.latest()[0]
        checkpoint, note = log.publish_checkpoint(NOW + timedelta(minutes=step))
        cosigned = witness.cosign(note, log.consistency_proof(old.size, checkpoint.size), T + step)
        assert cosigned_by_witness(cosigned, witness)
        assert witness.latest() == (checkpoint, cosigned)
    assert witness.latest()[0].size == first.size + 14
    # the same checkpoint again (say, a retry) is cosigned again: same size, same root, empty proof
    assert cosigned_by_witness(witness.cosign(witness.latest()[1], [], T + 99), witness)
    folder = tmp_path / "witness"
    assert stat.S_IMODE(os.stat(folder / "witness-key.pem").st_mode) == 0o600
    assert not list(folder.glob("*.new"))  # temporary files were renamed into place
    assert Witness.open(folder).vkey == witness.vkey


def test_refuses_a_rollback(ledger, ctx, log, witness):
    grow(ledger, ctx, 2)
    _, small = log.publish_checkpoint(NOW)
    witness.cosign(small, [], T)
    grow(ledger, ctx, 3)
    big, note = log.publish_checkpoint(NOW)
    witness.cosign(note, log.consistency_proof(2, big.size), T + 1)
    with pytest.raises(WitnessRefused, match=f"rollback: size 2 is smaller than the size {big.size}"):
        witness.cosign(small, [], T + 2)
    assert witness.latest()[0] == big


def test_refuses_a_forked_log(ledger, ctx, log, witness, fork_env):
    grow(ledger, ctx, 4)
    seen, note = log.publish_checkpoint(NOW)
    witness.cosign(note, [], T)
    # The same log key signs a second history (another database): the operator shows the witness a
    # log that does not contain what the witness already cosigned.
    other = build(fork_env)
    try:
        fork = transparency_log(other, fork_env)
        grow(other, ctx, 4)
        same_size, fork_note = fork.publish_checkpoint(NOW)
        assert same_size.size == seen.size and same_size.root != seen.root
        with pytest.raises(WitnessRefused, match="fork: a different root for size 4"):
            witness.cosign(fork_note, [], T + 1)
        grow(other, ctx, 3)
        bigger, fork_note = fork.publish_checkpoint(NOW)
        proof = fork.consistency_proof(4, bigger.size)  # a true proof, but of the fork's own history
        with pytest.raises(WitnessRefused, match=f"from old size 4 to new size {bigger.size} does not verify"):
            witness.cosign(fork_note, proof, T + 2)
    finally:
        other.close()
    assert witness.latest()[0] == seen  # nothing was saved
    grow(ledger, ctx, 1)  # the real log still gets its checkpoints cosigned
    _, note = log.publish_checkpoint(NOW)
    assert cosigned_by_witness(witness.cosign(note, log.consistency_proof(4, 5), T + 3), witness)


def test_refuses_other_keys_and_origins(ledger, ctx, log, witness):
    grow(ledger, ctx, 2)
    checkpoint, _ = log.publish_checkpoint(NOW)
    stranger = sign(checkpoint, generate_key(), checkpoint.origin)  # same origin, another key
    with pytest.raises(WitnessRefused, match="pinned log key"):
        witness.cosign(stranger, [], T)
    elsewhere = Checkpoint("elsewhere.example/log", checkpoint.size, checkpoint.root, NOW)
    with pytest.raises(WitnessRefused, match="origin 'elsewhere.example/log'"):  # the log's key, wrong origin
        witness.cosign(sign(elsewhere, log.keys.signing_key(), checkpoint.origin), [], T)
    for garbage in ("", "not a note\n", None):
        with pytest.raises(WitnessRefused):
            witness.cosign(garbage, [], T)
    assert witness.latest() is None


def test_proof_rules(ledger, ctx, log, witness):
    grow(ledger, ctx, 3)
    first, note = log.publish_checkpoint(NOW)
    with pytest.raises(WitnessError, match="first checkpoint takes no proof"):
        witness.cosign(note, [bytes(32)], T)
    witness.cosign(note, [], T)
    grow(ledger, ctx, 2)
    _, note = log.publish_checkpoint(NOW)
    with pytest.raises(WitnessError, match="give a consistency proof from size 3"):
        witness.cosign(note, log.consistency_proof(1, 5), T, old_size=1)
    with pytest.raises(WitnessError, match="a consistency proof from size 3 .* to size 5 is needed"):
        witness.cosign(note, [], T)
    with pytest.raises(WitnessRefused, match="from old size 3 to new size 5"):
        witness.cosign(note, [bytes(32)] * 3, T)
    for bad_time in (-1, 2**63, 1.0):
        with pytest.raises(WitnessError, match="invalid time"):
            witness.cosign(note, log.consistency_proof(3, 5), bad_time)
    assert witness.latest()[0] == first


def test_follows_a_key_rotation(ledger, ctx, log, witness):
    grow(ledger, ctx, 2)
    witness.cosign(log.publish_checkpoint(NOW)[1], [], T)
    grow(ledger, ctx, 1)
    rotation, note = log.rotate_key(NOW)
    witness.cosign(note, log.consistency_proof(2, 3), T + 1)
    assert witness.log_key()[2] == rotation.next_key
    grow(ledger, ctx, 1)
    _, note = log.publish_checkpoint(NOW)  # signed by the new key only
    assert cosigned_by_witness(witness.cosign(note, log.consistency_proof(3, 4), T + 2), witness)


def test_damaged_state_is_an_error(ledger, ctx, log, witness, tmp_path):
    grow(ledger, ctx, 2)
    witness.cosign(log.publish_checkpoint(NOW)[1], [], T)
    latest = tmp_path / "witness" / LATEST_FILE
    latest.write_text(latest.read_text().replace("\n2\n", "\n1\n", 1))  # someone edits the state by hand
    with pytest.raises(WitnessError, match="damaged"):
        witness.latest()
    with pytest.raises(WitnessError, match="already holds a witness"):
        Witness.init(tmp_path / "witness", NAME, witness.log_key()[2])
    with pytest.raises(WitnessError, match="missing"):
        Witness.open(tmp_path / "nowhere")


def test_cosigning_waits_for_the_lock(ledger, ctx, log, witness, tmp_path):
    grow(ledger, ctx, 2)
    _, note = log.publish_checkpoint(NOW)
    fd = os.open(tmp_path / "witness" / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another cosign in progress
    results: list[str] = []
    worker = threading.Thread(target=lambda: results.append(witness.cosign(note, [], T)))
    worker.start()
    worker.join(0.3)
    assert worker.is_alive() and witness.latest() is None
    os.close(fd)
    worker.join(10)
    assert results and witness.latest()[1] == results[0]


# --- the command line -------------------------------------------------------------------------


def run(*args: str):
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def test_cli_end_to_end(ledger, ctx, log, env, tmp_path):
    state, keyfile = tmp_path / "w", LogKeys.from_settings(Settings.from_environ(env)).verifier_file
    init = run("witness", "init", "--state", str(state), "--name", NAME, "--log-key", str(keyfile))
    assert init.exit_code == 0 and init.stdout.startswith(f"{NAME}+")
    assert "nothing cosigned yet" in run("witness", "show", "--state", str(state)).stdout

    grow(ledger, ctx, 3)
    (tmp_path / "cp1.note").write_text(log.publish_checkpoint(NOW)[1])
    first = run("witness", "cosign", "--state", str(state), "--checkpoint", str(tmp_path / "cp1.note"))
    assert first.exit_code == 0 and first.stdout.count("\n— ") == 2 and f"— {NAME} " in first.stdout

    grow(ledger, ctx, 2)
    (tmp_path / "cp2.note").write_text(log.publish_checkpoint(NOW)[1])
    proof = {"old_size": 3, "new_size": 5, "proof": [h.hex() for h in log.consistency_proof(3, 5)], "root": "…"}
    (tmp_path / "proof.json").write_text(json.dumps(proof, indent=2))
    second = run("witness", "cosign", "--state", str(state), "--checkpoint", str(tmp_path / "cp2.note"),
                 "--proof", str(tmp_path / "proof.json"), "--out", str(tmp_path / "cosigned.note"))
    assert second.exit_code == 0, second.output
    witness = Witness.open(state)
    assert verify_cosignatures((tmp_path / "cosigned.note").read_text(), [(NAME, witness.public_key)], 1) == [NAME]
    shown = run("witness", "show", "--state", str(state)).stdout
    assert "size:       5" in shown and init.stdout.strip() in shown

    # a proof as one base64 hash per line (as in a tlog-witness request) is accepted too
    grow(ledger, ctx, 2)
    (tmp_path / "cp3.note").write_text(log.publish_checkpoint(NOW)[1])
    (tmp_path / "proof.txt").write_text("".join(base64.b64encode(h).decode() + "\n" for h in log.consistency_proof(5, 7)))
    third = run("witness", "cosign", "--state", str(state), "--checkpoint", str(tmp_path / "cp3.note"),
                "--proof", str(tmp_path / "proof.txt"))
    assert third.exit_code == 0 and witness.latest()[0].size == 7

    rollback = run("witness", "cosign", "--state", str(state), "--checkpoint", str(tmp_path / "cp1.note"))
    assert rollback.exit_code == 2 and rollback.stderr.startswith("error: refused: rollback")
    assert rollback.stderr.count("\n") == 1 and rollback.stdout == ""


def test_cli_errors_are_one_line(ledger, ctx, log, env, tmp_path):
    state, keyfile = tmp_path / "w", LogKeys.from_settings(Settings.from_environ(env)).verifier_file
    run("witness", "init", "--state", str(state), "--name", NAME, "--log-key", str(keyfile))
    grow(ledger, ctx, 2)
    (tmp_path / "cp.note").write_text(log.publish_checkpoint(NOW)[1])
    run("witness", "cosign", "--state", str(state), "--checkpoint", str(tmp_path / "cp.note"))
    grow(ledger, ctx, 2)
    (tmp_path / "cp4.note").write_text(log.publish_checkpoint(NOW)[1])
    (tmp_path / "bad.json").write_text('{"proof": ["zz"]}')
    (tmp_path / "wrong.json").write_text(json.dumps({"old_size": 2, "new_size": 4,
                                                     "proof": [base64.b64encode(bytes(32)).decode()]}))
    (tmp_path / "stranger.txt").write_text("not a key\n")
    cases = [
        (1, ["witness", "show", "--state", str(tmp_path / "none")]),
        (1, ["witness", "init", "--state", str(state), "--name", NAME, "--log-key", str(keyfile)]),
        (1, ["witness", "init", "--state", str(tmp_path / "w2"), "--name", NAME, "--log-key",
             str(tmp_path / "stranger.txt")]),
        (1, ["witness", "init", "--state", str(tmp_path / "w3"), "--name", "bad name", "--log-key", str(keyfile)]),
        (1, ["witness", "cosign", "--state", str(state), "--checkpoint", str(tmp_path / "missing.note")]),
        (1, ["witness", "cosign", "--state", str(state), "--checkpoint", str(tmp_path / "cp4.note"),
             "--proof", str(tmp_path / "bad.json")]),
        (2, ["witness", "cosign", "--state", str(state), "--checkpoint", str(tmp_path / "cp4.note"),
             "--proof", str(tmp_path / "wrong.json")]),
        (2, ["witness", "cosign", "--state", str(state), "--checkpoint", str(tmp_path / "stranger.txt")]),
    ]
    for code, args in cases:
        result = run(*args)
        assert result.exit_code == code, (args, result.output)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr


def test_installed_command_has_no_traceback(tmp_path):
    caseledger = Path(sys.executable).with_name("caseledger")
    result = subprocess.run([str(caseledger), "witness", "show", "--state", str(tmp_path / "none")],
                            check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr + result.stdout
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


def test_cosigned_checkpoint_is_attached_and_required_by_verify(ledger, ctx, env, log, witness, tmp_path):
    """The whole loop through the command line: publish, witness cosigns, the ledger stores the
    cosigned note, and verify requires N witnesses (and fails when they are not there)."""
    def run(*args):
        result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
        return result.exit_code, result.output

    witness_key = tmp_path / "witness-key.txt"
    witness_key.write_text(witness.vkey + "\n")
    grow(ledger, ctx, 3)
    _, note = log.publish_checkpoint(NOW)
    code, text = run("verify", "--witness", str(witness_key), "--witnesses-required", "1")
    assert code == 1 and "carries 1 valid cosignatures" in text
    cosigned = tmp_path / "cosigned.note"
    cosigned.write_text(witness.cosign(note, [], T))
    code, text = run("attach-cosignatures", str(cosigned))
    assert code == 0, text
    code, text = run("verify", "--witness", str(witness_key), "--witnesses-required", "1")
    assert code == 0 and f"cosigned by {NAME}" in text, text
    assert run("verify", "--witness", str(witness_key), "--witnesses-required", "2")[0] == 1
    code, text = run("verify", "--witnesses-required", "1")  # the flag alone cannot pass for a check
    assert code == 2 and "--witness FILE" in text
    forged = tmp_path / "forged.note"  # a note this log never published cannot be attached
    forged.write_text(sign(Checkpoint(log.keys.origin, 99, bytes(32), NOW), generate_key(), log.keys.origin))
    code, text = run("attach-cosignatures", str(forged))
    assert code == 1 and "Traceback" not in text
