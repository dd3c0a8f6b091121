"""The command line against a real database (both backends): create a ledger, import, list events,
sign and verify; only `db init`, `serve` and `demo` create a ledger; `db harden` on PostgreSQL."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg
from click.testing import CliRunner

from cli.main import main
from cli.throwaway_pg import free_port

CASELEDGER = str(Path(sys.executable).with_name("caseledger"))


def test_import_events_checkpoint_verify(env, token_env, tmp_path):
    runner = CliRunner()
    created = runner.invoke(main, ["db", "init"], env=env)
    assert created.exit_code == 0 and "created a ledger" in created.output, created.output
    env = token_env("service", "import")  # the importing system's token
    data = tmp_path / "contacts.ndjson"
    data.write_text('{"channel": "email", "external_ref": "e-1", "content": "hello"}\n'
                    '{"channel": "sms", "external_ref": "e-2", "occurred_at": "2025-09-01T08:00:00+08:00"}\n')
    result = runner.invoke(main, ["import-interactions", str(data)], env=env)
    assert result.exit_code == 0, result.output
    assert "imported 2" in result.output
    again = runner.invoke(main, ["import-interactions", str(data)], env=env)
    assert "imported 0, skipped 2" in again.output

    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"channel": "email"}\n{"channel": 5}\n')
    rejected = runner.invoke(main, ["import-interactions", str(bad)], env=env)
    assert rejected.exit_code == 1 and "line 2" in rejected.output

    listed = runner.invoke(main, ["events", "--json", "--kind", "interaction"], env=env)
    records = [json.loads(line) for line in listed.output.splitlines()]
    assert [r["type"] for r in records] == ["Received", "Received"]
    assert records[0]["meta"]["actor_id"] == "import" and records[0]["meta"]["actor_role"] == "service"
    assert records[0]["meta"]["via"] == "cli" and records[0]["meta"]["os_user"]
    # a past business time only as a historical import, saying from which file
    assert "imported" not in records[0]["meta"]
    assert records[1]["meta"]["imported"].startswith(f"{data} sha256:")

    assert runner.invoke(main, ["keys", "init"], env=env).exit_code == 1  # made by db init; never silently replaced
    assert runner.invoke(main, ["checkpoint"], env=env).exit_code == 0
    verified = runner.invoke(main, ["verify"], env=env)
    assert verified.exit_code == 0 and "OK 3 leaves, 1 checkpoint verified" in verified.output  # the token, 2 contacts


def _has_ledger(env: dict[str, str]) -> bool:
    from ledger.database import ledger_exists
    from ledger.settings import Settings

    return ledger_exists(Settings.from_environ(env))


def test_only_db_init_serve_and_demo_create_a_ledger(env, token_env, tmp_path):
    runner = CliRunner()
    home = Path(env["CASELEDGER_HOME"])
    for command in (["events"], ["verify"], ["tokens", "list"], ["projections", "status"], ["db", "harden"],
                    ["retention", "records"], ["jobs", "history"], ["checkpoint"]):
        refused = runner.invoke(main, command, env=env)
        assert refused.exit_code == 1, (command, refused.output)
        assert "no ledger at" in refused.stderr and f"(CASELEDGER_HOME={home})" in refused.stderr, command
        assert "run 'caseledger db init' to create one" in refused.stderr
    assert not home.exists() and not _has_ledger(env)  # no folder, no key-encryption key, no tables

    assert runner.invoke(main, ["db", "init"], env=env).exit_code == 0
    assert _has_ledger(env) and (home / "data-kek.key").exists() and (home / "keys" / "log-signing.pem").exists()
    again = runner.invoke(main, ["db", "init"], env=env)
    assert again.exit_code == 0 and "nothing to create" in again.stderr
    listed = runner.invoke(main, ["events", "--json", "--type", "Received"], env=token_env("auditor"))
    assert listed.exit_code == 0 and listed.stdout == ""


def test_a_ledger_whose_key_encryption_key_is_elsewhere_is_not_given_a_new_one(env, token_env, tmp_path):
    runner = CliRunner()
    assert runner.invoke(main, ["db", "init"], env=env).exit_code == 0
    kek = Path(env["CASELEDGER_HOME"]) / "data-kek.key"
    moved = kek.rename(tmp_path / "elsewhere.key")
    refused = runner.invoke(main, ["events"], env=env)
    assert refused.exit_code == 1 and "key-encryption key is not at" in refused.stderr
    assert not kek.exists()
    moved_env = token_env("auditor", base={**env, "CASELEDGER_KEK_FILE": str(moved)})
    assert runner.invoke(main, ["events"], env=moved_env).exit_code == 0


def test_demo_then_verify_in_an_empty_folder(cli, tmp_path):
    """The README's first steps, in a folder with nothing in it (the home is ./var)."""
    folder = tmp_path / "empty"
    folder.mkdir()
    demo = cli("demo", "--customers", "4", "--interactions", "12", env={}, cwd=folder)
    assert demo.returncode == 0, demo.stderr
    assert "published a checkpoint" in demo.stderr and (folder / "var" / "keys" / "log-signing.pem").exists()
    verified = cli("verify", env={}, cwd=folder)
    assert verified.returncode == 0, verified.stderr
    assert "OK" in verified.stderr and "1 checkpoint verified" in verified.stderr and "Traceback" not in verified.stderr


def test_db_harden_on_postgresql(cli, pg_env, pg_dsn):
    assert cli("db", "init", env=pg_env).returncode == 0
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        role = f"app_{free_port()}"
        conn.execute(f'CREATE ROLE "{role}"')
    try:
        done = cli("db", "harden", "--app-role", role, env=pg_env)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        assert "REVOKE UPDATE, DELETE, TRUNCATE" in done.stdout and 'GRANT SELECT, INSERT ON' in done.stdout
        schema = pg_env["CASELEDGER_DATABASE_URL"].rsplit("schema=", 1)[1]
        with psycopg.connect(pg_dsn) as conn:
            (may_update, may_insert), = conn.execute(
                "SELECT has_table_privilege(%s, %s, 'UPDATE'), has_table_privilege(%s, %s, 'INSERT')",
                (role, f'"{schema}".caseledger_events') * 2).fetchall()
        assert (may_update, may_insert) == (False, True)
        assert cli("db", "harden", env=pg_env).returncode == 0  # again, as often as wanted
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')


def test_policy_named_as_listed_governs_new_cases(env, token_env):
    runner = CliRunner()
    pinned = {**env, "CASELEDGER_POLICY": "enterprise-2025@1", "COLUMNS": "250"}
    listed = runner.invoke(main, ["policies"], env=pinned)
    assert listed.exit_code == 0 and "enterprise-2025@1 (default)" in " ".join(listed.stdout.split())
    assert runner.invoke(main, ["demo", "--customers", "2", "--interactions", "4"], env=pinned).exit_code == 0
    records = [json.loads(line) for line in runner.invoke(main, ["events", "--json", "--kind", "ticket"],
                                                          env=token_env("auditor", base=pinned)).stdout.splitlines()]
    assert records and {r["meta"]["policy"] for r in records} == {"enterprise-2025@1"}


def _wait_healthy(port: int, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited during start-up"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("no answer on /healthz")


def test_serve_creates_the_ledger_accepts_a_policy_as_listed_and_never_prints_the_password(pg_env, tmp_path):
    # The test cluster trusts local connections, so any password is accepted: it only has to stay unprinted.
    url = pg_env["CASELEDGER_DATABASE_URL"].replace("postgresql://postgres@", "postgresql://postgres:s3cret@")
    env = {**pg_env, "CASELEDGER_DATABASE_URL": url, "CASELEDGER_POLICY": "enterprise-2025@1", "PATH": "/usr/bin:/bin",
           "COLUMNS": "250"}  # one banner line, however long
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen([CASELEDGER, "serve", "--port", str(port)], env=env, stdout=out,
                                  stderr=subprocess.STDOUT)
        try:
            _wait_healthy(port, server)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
    output = log.read_text()
    assert f"127.0.0.1:{port}" in output and "postgresql://postgres:***@" in output
    assert "s3cret" not in output and "Traceback" not in output
    assert _has_ledger(env)
