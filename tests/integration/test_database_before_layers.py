"""A ledger written before the code moved into its layers still opens, reads and verifies.

``tests/fixtures/ledger-before-layers`` is a ``CASELEDGER_HOME`` made by the code as it was at
commit c12cbf7 (before ``ledger/`` was split into ``ledger``, ``services`` and ``cli``):
``caseledger keys init``, ``caseledger demo --customers 6 --interactions 40 --seed 3``,
``caseledger checkpoint`` — once on SQLite (``caseledger.db``) and once, with the same keys, on
PostgreSQL (``postgres.sql``: ``pg_dump --schema cl_fixture_before_layers --no-owner
--no-privileges``, restored here into a schema of its own). Stored events name their classes by
topic (``module:QualName``); the move touched no ``domain`` module, so every stored topic must
still resolve, and the log, checkpoint and sealed personal data must read exactly as before.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Iterator

import psycopg
import pytest
from eventsourcing.utils import resolve_topic

from cli.throwaway_pg import find_bindir
from ledger.bootstrap import build, transparency_log
from ledger.settings import Settings

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ledger-before-layers"
DUMPED_SCHEMA = "cl_fixture_before_layers"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgres"])
def old_home(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The fixture's home (keys, KEK) with its ledger on the backend under test, as CASELEDGER_* variables."""
    home = tmp_path / "home"
    shutil.copytree(FIXTURE, home)
    if request.param == "sqlite":
        yield {"CASELEDGER_HOME": str(home)}
        return
    dsn = request.getfixturevalue("pg_dsn")
    schema = f"t_old_{uuid.uuid4().hex[:12]}"
    script = home / "restore.sql"
    script.write_text((FIXTURE / "postgres.sql").read_text(encoding="utf-8").replace(DUMPED_SCHEMA, schema),
                      encoding="utf-8")
    subprocess.run([str(find_bindir() / "psql"), "--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1", "--dbname", dsn,
                    "--file", str(script)], check=True, capture_output=True, timeout=120)
    sep = "&" if "?" in dsn else "?"
    yield {"CASELEDGER_HOME": str(home), "CASELEDGER_DATABASE_URL": f"{dsn}{sep}schema={schema}"}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _stored(settings: Settings) -> list[tuple[str, bytes]]:
    """(topic, state) of every stored event, read with plain SQL rather than through the ledger."""
    if settings.backend == "sqlite":
        import sqlite3

        with sqlite3.connect(settings.database_url.removeprefix("sqlite:///")) as conn:
            return [(t, bytes(s)) for t, s in conn.execute("SELECT topic, state FROM stored_events")]
    env = settings.persistence_env()
    with psycopg.connect(host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"], user=env["POSTGRES_USER"],
                         password=env["POSTGRES_PASSWORD"], dbname=env["POSTGRES_DBNAME"]) as conn:
        rows = conn.execute(f'SELECT topic, state FROM "{env["POSTGRES_SCHEMA"]}".caseledger_events').fetchall()
    return [(t, bytes(s)) for t, s in rows]


def test_every_stored_topic_still_resolves_to_a_domain_class(old_home):
    topics = Counter(topic for topic, _ in _stored(Settings.from_environ(old_home)))
    assert sum(topics.values()) > 200
    for topic in topics:
        assert topic.startswith("domain."), topic
        assert resolve_topic(topic).__module__.startswith("domain."), topic


def test_the_old_ledger_reads_and_verifies(old_home):
    settings = Settings.from_environ(old_home)
    ledger = build(settings)
    try:
        events, after = [], 0
        while page := ledger.log(after=after, limit=500):
            events += page
            after = page[-1][0]
        assert len(events) == ledger.recorder.max_notification_id() > 200
        kinds = Counter(type(event).__module__ for _, event in events)
        assert {"domain.customer", "domain.interaction", "domain.ticket", "domain.complaint"} <= set(kinds)
        names = [event.personal["fields"]["name"] for _, event in events
                 if type(event).__qualname__ == "Customer.Registered"]
        assert len(names) == 6 and all(isinstance(name, str) and name for name in names)  # unsealed with the old KEK
        stored = b"".join(state for _, state in _stored(settings))
        assert not any(name.encode() in stored for name in names)  # they were sealed, not stored in clear
        report = transparency_log(ledger, settings).verify()
        assert report.ok and report.leaves == len(events) and report.checkpoints_checked >= 1
    finally:
        ledger.close()


def test_the_command_line_verifies_the_old_ledger(old_home):
    done = subprocess.run([sys.executable, "-m", "cli.main", "verify"], env={**old_home, "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stderr and re.search(r"\d+ checkpoints? verified", done.stderr)
