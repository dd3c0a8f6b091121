"""The one settings object: every CASELEDGER_* variable read once, checked, and documented."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.bootstrap import build
from ledger.settings import VARIABLES, Settings, SettingsError

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults_follow_home():
    plain = Settings.from_environ({})
    assert plain.home == Path("var") and plain.database_url == "sqlite:///var/caseledger.db"
    moved = Settings.from_environ({"CASELEDGER_HOME": "/srv/cl"})
    assert moved.database_url == "sqlite:////srv/cl/caseledger.db"
    assert moved.kek_file == Path("/srv/cl/data-kek.key") and moved.reports_dir == Path("/srv/cl/reports")
    assert moved.signing_key_file == Path("/srv/cl/keys/log-signing.pem")
    assert moved.verifier_key_file == Path("/srv/cl/keys/log-verifier.txt")
    assert moved.backend == "sqlite"


def test_values_are_parsed():
    key = base64.b64encode(bytes(range(32))).decode()
    settings = Settings.from_environ({
        "CASELEDGER_DATABASE_URL": "postgresql://u:p@db:6543/cl?schema=s&pool_size=9",
        "CASELEDGER_KEK": key, "CASELEDGER_AGGREGATE_CACHE": "0", "CASELEDGER_KEY_CACHE_SECONDS": "2.5",
        "CASELEDGER_SCHEDULER_JOBS": "sla_clocks, integrity", "CASELEDGER_SCHEDULE_SLA_CLOCKS": "every 5s",
        "CASELEDGER_SCHEDULER_WORKERS": "3", "PATH": "/bin"})
    assert settings.backend == "postgres" and settings.kek == bytes(range(32))
    assert settings.aggregate_cache == 0 and settings.key_cache_seconds == 2.5 and settings.scheduler_workers == 3
    assert settings.scheduler_jobs == ("sla_clocks", "integrity") and settings.schedules == {"sla_clocks": "every 5s"}
    env = settings.persistence_env()
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_SCHEMA"], env["POSTGRES_POOL_SIZE"]) == \
        ("db", "6543", "s", "9")
    assert "AGGREGATE_CACHE_MAXSIZE" not in env  # 0 turns the cache off
    assert settings.child_environ(X="1") == {**settings.environ, "X": "1"} and settings.environ["PATH"] == "/bin"
    assert key not in repr(settings)  # the key-encryption key is never printed


def test_a_primary_and_its_standbys_in_one_url():
    from ledger.pgurl import connect_kwargs, is_postgres, servers

    url = "postgresql://app:p%40ss@10.0.0.1:5432,10.0.0.2:5433/cl?target_session_attrs=read-write&schema=s&sslmode=prefer"
    env = Settings.from_environ({"CASELEDGER_DATABASE_URL": url}).persistence_env()
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_DBNAME"], env["POSTGRES_SCHEMA"]) == \
        ("10.0.0.1,10.0.0.2", "5432,5433", "cl", "s")
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"]) == ("app", "p@ss")
    # libpq parameters that eventsourcing's factory has no setting for: ours passes them through
    assert env["PERSISTENCE_MODULE"] == "ledger.pg_store:LedgerPostgresFactory" and is_postgres(env)
    assert connect_kwargs(env) == {"host": "10.0.0.1,10.0.0.2", "port": "5432,5433", "dbname": "cl", "user": "app",
                                   "password": "p@ss", "target_session_attrs": "read-write", "sslmode": "prefer"}
    assert servers(env) == "10.0.0.1:5432, 10.0.0.2:5433"
    plain = Settings.from_environ({"CASELEDGER_DATABASE_URL": "postgresql://db/cl"}).persistence_env()
    assert plain["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    # The connections are checked before use by ledger.outage (always), not by the pool's pre-ping.
    assert "POSTGRES_PRE_PING" not in env and "POSTGRES_PRE_PING" not in plain
    assert plain["POSTGRES_CONNECT_TIMEOUT"] == "2"  # CASELEDGER_DB_TIMEOUT_SECONDS, whole seconds
    slower = Settings.from_environ({"CASELEDGER_DATABASE_URL": "postgresql://db/cl", "CASELEDGER_DB_TIMEOUT_SECONDS": "4.5"})
    assert slower.db_timeout_seconds == 4.5 and slower.persistence_env()["POSTGRES_CONNECT_TIMEOUT"] == "5"
    assert servers(plain) == "db:5432" and connect_kwargs(plain)["password"] is None


@pytest.mark.parametrize("name, value, says", [
    ("CASELEDGER_AGGREGATE_CACHE", "-1", "negative"),
    ("CASELEDGER_AGGREGATE_CACHE", "lots", "not a whole number"),
    ("CASELEDGER_KEY_CACHE_SECONDS", "nan", "seconds"),
    ("CASELEDGER_CLOCK_SKEW_SECONDS", "-1", "seconds"),
    ("CASELEDGER_SCHEDULER_RETRY_SECONDS", "0", "more than 0"),
    ("CASELEDGER_DB_TIMEOUT_SECONDS", "0", "more than 0"),
    ("CASELEDGER_SCHEDULER_WORKERS", "0", "at least 1"),
    ("CASELEDGER_KEK", "not base64!", "base64"),
    ("CASELEDGER_KEK", base64.b64encode(b"short").decode(), "32 bytes"),
    ("CASELEDGER_DATABASE_URL", "mysql://root:s3cret@db/cl", "unsupported 'mysql'"),
    ("CASELEDGER_DATABASE_URL", "sqlite:///", "unsupported"),
    ("CASELEDGER_DATABASE_URL", "postgresql://u:s3cret@a:1,b:2,c:3,d:4/cl?foo=1", 'parameter: "foo"'),
    ("CASELEDGER_DATABASE_URL", "postgresql://u:s3cret@a:1,b:2,c:3/cl?target_session_attrs=rw", "read-write"),
    ("CASELEDGER_DATABASE_URL", "postgresql://u:s3cret@a,b,c/cl?port=1,2", "2 ports for 3 hosts"),
    ("CASELEDGER_DATABASE_URL", "postgresql://u:s3cret@a:1,b:x/cl", "'x' is not a port"),
    ("CASELEDGER_DATABASE_URL", "postgresql://u:s3cret@[::1/cl", "IPv6"),
    ("CASELEDGER_DATABASE_URL", "postgresql://u:s3cret@db/cl?pool_size=0", "pool_size"),
    ("CASELEDGER_DATABSE_URL", "sqlite:///x.db", "no such setting"),  # a typo is not ignored
])
def test_a_bad_value_names_its_variable(name, value, says):
    with pytest.raises(SettingsError) as raised:
        Settings.from_environ({name: value})
    message = str(raised.value)
    assert message.startswith(f"{name}: ") and says in message and "\n" not in message
    assert "s3cret" not in message


def test_the_clock_skew_is_seconds_two_minutes_by_default():
    assert Settings.from_environ({}).clock_skew_seconds == 120
    assert Settings.from_environ({"CASELEDGER_CLOCK_SKEW_SECONDS": "0.5"}).clock_skew_seconds == 0.5


def test_the_command_line_reports_a_bad_setting_in_one_line(tmp_path):
    env = {"CASELEDGER_HOME": str(tmp_path), "CASELEDGER_SCHEDULER_WORKERS": "many", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "cli.main", "policies"], env=env, capture_output=True, text=True,
                          cwd=README.parent, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == ["error: CASELEDGER_SCHEDULER_WORKERS: 'many' is not a whole number"]


def test_the_readme_lists_every_setting():
    rows = re.findall(r"^\| `(CASELEDGER_[A-Z_<>]+)` \| (.+?) \| (.+?) \|$", README.read_text(encoding="utf-8"),
                      re.MULTILINE)
    assert rows == [(v.name, v.default, v.meaning) for v in VARIABLES]
    assert len(rows) >= 20


def test_the_process_environment_cannot_reconfigure_the_store(env, monkeypatch):
    # eventsourcing itself would merge os.environ into the application's settings: an operator's
    # stray PERSISTENCE_MODULE or CIPHER_TOPIC must not decide where or how events are stored.
    monkeypatch.setenv("PERSISTENCE_MODULE", "eventsourcing.popo")
    monkeypatch.setenv("CIPHER_TOPIC", "eventsourcing.cipher:AESCipher")
    ledger = build(env)
    try:
        assert type(ledger.recorder).__name__ in {"LedgerSQLiteRecorder", "LedgerPostgresRecorder"}
        assert "CIPHER_TOPIC" not in ledger.env and ledger.mapper.cipher is None
    finally:
        ledger.close()
