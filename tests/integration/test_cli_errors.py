"""Bad input on the command line: exactly one line on stderr saying what is wrong, a non-zero exit
code, never a traceback — run as users run it (the installed script, a process of its own).

Each row: (name, arguments, extra environment, what the line must contain, expected exit code).
``{home}``, ``{tmp}`` and ``{data}`` in arguments and environment are filled in per test."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import context
from cli.main import main
from cli.throwaway_pg import free_port

BAD_CHANNEL = '{"channel": "email", "external_ref": "ok-1"}\n{"channel": "pigeon", "external_ref": "bad-1"}\n'

SQLITE_ROWS = [
    ("vocabulary error in import-interactions", ["import-interactions", "{data}"], {}, "line 2", 1),
    ("import file that does not exist", ["import-interactions", "{tmp}/nope.ndjson"], {}, "nope.ndjson", 2),
    ("retention report --as-of yesterday", ["retention", "report", "--as-of", "yesterday"], {}, "'yesterday'", 2),
    ("replay --as-of yesterday", ["replay", "ticket", "00000000-0000-0000-0000-000000000001", "--as-of",
                                  "yesterday"], {}, "--as-of", 2),
    ("replay --as-of without a time zone", ["replay", "ticket", "00000000-0000-0000-0000-000000000001", "--as-of",
                                            "2025-09-01T09:00:00"], {}, "no time zone", 2),
    ("replay --diff-from nonsense", ["replay", "ticket", "00000000-0000-0000-0000-000000000001", "--position", "1",
                                     "--diff-from", "last week"], {}, "--diff-from", 2),
    ("jobs run --as-of yesterday", ["jobs", "run", "sla_clocks", "--as-of", "yesterday"], {}, "'yesterday'", 2),
    ("business time is not an option any more", ["holds", "place", "customer", "c-1", "--authority", "court",
                                                  "--at", "2032-01-01T00:00:00+00:00"], {}, "--at", 2),
    ("claimed actor is not an option any more", ["findings", "ack", "f-1", "--reason", "r", "--actor", "xu"], {},
     "--actor", 2),
    ("no token", ["events"], {"CASELEDGER_TOKEN": ""}, "this command acts as a person", 1),
    ("unknown token", ["events"], {"CASELEDGER_TOKEN": "cl_forged"}, "not known, has expired or was revoked", 1),
    ("a role without the permission", ["findings", "ack", "f-1", "--reason", "r"], {"CASELEDGER_TOKEN": "{agent}"},
     "refused: a agent may not findings.acknowledge", 1),
    ("a records manager approving", ["retention", "approve", "d-1"], {"CASELEDGER_TOKEN": "{records_manager}"},
     "may not dispositions.approve", 1),
    ("an unreadable token file", ["--token-file", "{tmp}/no-token", "events"], {}, "no-token", 1),
    ("an empty token file", ["--token-file", "{data}", "events"], {}, "is empty", 1),
    ("unsupported database URL", ["events"], {"CASELEDGER_DATABASE_URL": "mysql://root:s3cret@db/cl"},
     "unsupported 'mysql'", 1),
    ("unknown policy version", ["events"], {"CASELEDGER_POLICY": "enterprise-2025@9"}, "enterprise-2025@9", 1),
    ("unknown policy name", ["policies"], {"CASELEDGER_POLICY": "enterprise"}, "CASELEDGER_POLICY", 1),
    ("missing ledger via mistyped home", ["events"], {"CASELEDGER_HOME": "{tmp}/hmoe"},
     "no ledger at {tmp}/hmoe (CASELEDGER_HOME={tmp}/hmoe); run 'caseledger db init' to create one", 1),
    ("a bad setting", ["events"], {"CASELEDGER_SCHEDULER_WORKERS": "many"}, "CASELEDGER_SCHEDULER_WORKERS", 1),
    ("db harden on SQLite", ["db", "harden"], {}, "PostgreSQL only", 1),
    ("home under a file", ["db", "init"], {"CASELEDGER_HOME": "{data}/home"}, "Not a directory", 1),
    ("SQLite database that is a folder", ["db", "init"], {"CASELEDGER_DATABASE_URL": "sqlite:///{tmp}"},
     "database", 1),
    ("unknown command", ["evnets"], {}, "evnets", 2),
]


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def assert_one_line(done, contains: str, exit_code: int) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and contains in lines[0], lines[0]
    assert done.returncode == exit_code, (done.returncode, done.stderr)
    assert "s3cret" not in done.stderr + done.stdout
    return lines[0]


@pytest.fixture(scope="module")
def sqlite_home(tmp_path_factory) -> Path:
    """One initialised SQLite ledger, shared by the rows (none of them writes)."""
    home = tmp_path_factory.mktemp("errors") / "home"
    result = CliRunner().invoke(main, ["db", "init"], env={"CASELEDGER_HOME": str(home)})
    assert result.exit_code == 0, result.output
    return home


@pytest.fixture(scope="module")
def tokens(sqlite_home) -> dict[str, str]:
    """A token per role on that ledger (the rows act as a service unless they say otherwise)."""
    from ledger.bootstrap import build
    from services.tokens import TokenService, system_context

    ledger = build({"CASELEDGER_HOME": str(sqlite_home)}, create=False)
    try:
        return {role: TokenService(ledger).issue(f"{role}-1", role, None, ctx=system_context("test-setup"))[0]
                for role in ("service", "agent", "records_manager")}
    finally:
        ledger.close()


@pytest.mark.parametrize("name, args, extra, contains, exit_code", SQLITE_ROWS, ids=[row[0] for row in SQLITE_ROWS])
def test_bad_input_is_one_line_on_sqlite(cli, sqlite_home, tokens, tmp_path, name, args, extra, contains, exit_code):
    data = tmp_path / "contacts.ndjson"
    data.write_text(BAD_CHANNEL, encoding="utf-8")
    values = {"home": str(sqlite_home), "tmp": str(tmp_path), "data": str(data), **tokens}
    if name == "an empty token file":
        data.write_text("")
    env = {"CASELEDGER_HOME": str(sqlite_home), "CASELEDGER_TOKEN": tokens["service"],
           **{k: _fill(v, values) for k, v in extra.items()}}
    done = cli(*[_fill(a, values) for a in args], env=env)
    assert_one_line(done, _fill(contains, values), exit_code)
    if name == "missing ledger via mistyped home":
        assert not (tmp_path / "hmoe").exists()  # nothing created: no folder, no key-encryption key


def test_nothing_of_a_rejected_import_is_written(cli, sqlite_home, tokens, tmp_path):
    data = tmp_path / "contacts.ndjson"
    data.write_text(BAD_CHANNEL, encoding="utf-8")
    env = {"CASELEDGER_HOME": str(sqlite_home), "CASELEDGER_TOKEN": tokens["service"]}
    assert cli("import-interactions", str(data), env=env).returncode == 1
    listed = cli("events", "--json", env=env)
    assert listed.returncode == 0 and '"Received"' not in listed.stdout


# -- PostgreSQL: what only a server can get wrong ------------------------------------------------------
def _pg_url(pg_dsn: str, *, password: str | None = None, port: int | None = None, dbname: str | None = None) -> str:
    rest = pg_dsn.split("://", 1)[1]
    user, _, address = rest.partition("@")
    hostport, _, db = address.partition("/")
    host = hostport.rsplit(":", 1)[0]
    user = user.split(":", 1)[0] + (f":{password}" if password else "")
    return f"postgresql://{user}@{host}:{port or hostport.rsplit(':', 1)[1]}/{dbname or db}"


@pytest.mark.parametrize("row", ["nonexistent database", "nothing listening", "missing ledger", "policy version"])
def test_bad_postgresql_settings_are_one_line_and_fast(cli, pg_dsn, pg_url, tmp_path, row):
    home = str(tmp_path / "home")
    env, contains = {
        "nonexistent database": ({"CASELEDGER_DATABASE_URL": _pg_url(pg_dsn, password="s3cret", dbname="no_such_db")},
                                 "database 'no_such_db' does not exist"),
        "nothing listening": ({"CASELEDGER_DATABASE_URL": _pg_url(pg_dsn, port=free_port())}, "connection refused"),
        "missing ledger": ({"CASELEDGER_DATABASE_URL": pg_url.replace("://postgres@", "://postgres:s3cret@")},
                           "no ledger at postgresql://postgres:***@"),
        "policy version": ({"CASELEDGER_DATABASE_URL": pg_url, "CASELEDGER_POLICY": "sop-2025@7"}, "sop-2025@7"),
    }[row]
    started = time.monotonic()
    done = cli("events", env={"CASELEDGER_HOME": home, **env})
    assert time.monotonic() - started < 8  # the pool's own retrying would take 10 s and say only "timeout"
    assert_one_line(done, contains, 1)
    assert not Path(home).exists()


def test_serve_on_a_nonexistent_postgresql_database_is_one_line(cli, pg_dsn, tmp_path):
    done = cli("serve", "--port", str(free_port()), env={"CASELEDGER_HOME": str(tmp_path / "home"),
                                                         "CASELEDGER_DATABASE_URL": _pg_url(pg_dsn, dbname="nope")})
    assert_one_line(done, "database 'nope' does not exist", 1)


# -- the safety net itself -----------------------------------------------------------------------------
def test_an_unexpected_error_is_one_line_and_debug_shows_it(sqlite_home, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the disk\nis on fire, see postgresql://u:s3cret@db/x")

    monkeypatch.setattr(context.bootstrap, "build", broken)
    env = {"CASELEDGER_HOME": str(sqlite_home)}
    done = CliRunner().invoke(main, ["events"], env=env)
    assert done.exit_code == 1 and done.stdout == ""
    assert done.stderr.strip() == ("error: RuntimeError: the disk is on fire, see postgresql://u:***@db/x "
                                   "(run with --debug for details)")
    debugged = CliRunner().invoke(main, ["--debug", "events"], env=env)
    assert isinstance(debugged.exception, RuntimeError) and debugged.exit_code == 1


def test_an_interrupt_is_one_line(sqlite_home, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(context.bootstrap, "build", interrupted)
    done = CliRunner().invoke(main, ["events"], env={"CASELEDGER_HOME": str(sqlite_home)})
    assert done.exit_code == 130 and done.stderr.strip() == "error: interrupted"
