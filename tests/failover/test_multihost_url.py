"""The multi-host URL on one server: the first host down, the second the primary.

What the failover test relies on, checked without a standby (cheap, on the session's cluster):
every connection the ledger makes — its pool, the checks before it is built, the log's page
readers, the read models' own connection — goes past a host that is down to the one that accepts
writes, and a URL naming only standbys (here: hosts that are down) fails with one line saying so.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Iterator

import psycopg
import pytest

from cli.throwaway_pg import free_port
from ledger.bootstrap import build, transparency_log
from ledger.database import DatabaseUnavailable, ledger_exists
from ledger.keys import LogKeys
from ledger.settings import Settings
from services.tokens import system_context

pytestmark = pytest.mark.integration


@pytest.fixture
def multihost(pg_dsn: str, tmp_path: Path) -> Iterator[tuple[Settings, int]]:
    info = psycopg.conninfo.conninfo_to_dict(pg_dsn)
    schema = f"m_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    port = int(info.get("port", 5432))
    url = (f"postgresql://{info.get('user', 'postgres')}@127.0.0.1:{free_port()},{info.get('host', '127.0.0.1')}:"
           f"{port}/{info.get('dbname', 'postgres')}?target_session_attrs=read-write&schema={schema}")
    yield Settings.from_environ({"CASELEDGER_DATABASE_URL": url, "CASELEDGER_HOME": str(tmp_path / "home")}), port
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_the_ledger_reaches_the_primary_past_a_host_that_is_down(multihost):
    settings, port = multihost
    LogKeys.from_settings(settings).init()
    ledger = build(settings)
    try:
        assert ledger_exists(settings)
        customer = ledger.register_customer(system_context("agent-li", "agent"), kind="individual", tier="general",
                                            contact={"name": "王五", "phone": "13900001111"})
        assert ledger.get("customer", customer.id).version == customer.version
        with ledger.recorder.datastore.get_connection() as conn:
            assert conn.info.port == port
        log = transparency_log(ledger, settings)
        log.publish_checkpoint(customer.modified_on)
        assert log.verify().ok and log.size() == 1
    finally:
        ledger.close()


def test_a_url_without_a_reachable_primary_says_so_in_one_line(tmp_path):
    url = f"postgresql://postgres@127.0.0.1:{free_port()},127.0.0.1:{free_port()}/db?target_session_attrs=read-write"
    settings = Settings.from_environ({"CASELEDGER_DATABASE_URL": url, "CASELEDGER_HOME": str(tmp_path)})
    with pytest.raises(DatabaseUnavailable) as raised:
        ledger_exists(settings)
    message = str(raised.value)
    assert "\n" not in message and "connection refused" in message and ", 127.0.0.1:" in message


def test_the_read_models_connection_reaches_the_primary_too(multihost):
    from projections.store import ViewDatabase

    settings, port = multihost
    ledger = build(settings)
    try:
        db = ViewDatabase.for_ledger(ledger)
        assert db.postgres and db.connection.info.port == port
        db.close()
    finally:
        ledger.close()
