"""eventsourcing's own reusable recorder test cases, run against our Merkle-logging recorders.

Our recorders extend the library's; these are the library's tests of the recorder contract
(insert/select, notification order, concurrent writers), so the extension must still pass them.
And our extension's own contract: a request's Idempotency-Key claim is marked in the events'
transaction, and a request that lost its claim writes nothing.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.tests.persistence import ApplicationRecorderTestCase
from eventsourcing.utils import Environment

from cli.throwaway_pg import free_port
from ledger.idempotency import TABLE, Claim, ClaimLost, Written
from ledger.pg_store import LedgerPostgresFactory
from ledger.recorders import LedgerPostgresRecorder, LedgerSQLiteRecorder
from ledger.settings import Settings
from ledger.sqlaccess import SqlAccess


class MarksIdempotencyKeys:
    def test_marks_the_claim_with_the_events_or_writes_nothing(self) -> None:
        recorder = self.create_recorder()
        sql = SqlAccess(recorder, {"keys": TABLE, "leaves": "merkle_leaves"})
        sql.execute("INSERT INTO {keys} (caller, key, fingerprint, claim, created_at) VALUES ('c', 'k', 'f', 'mine', "
                    "'2025-01-01')")
        held, lost = Claim("c", "k", "mine"), Claim("c", "k", "theirs")  # theirs: taken over since

        def event(version: int, oid: uuid.UUID | None = None) -> StoredEvent:
            return StoredEvent(originator_id=oid or uuid.uuid4(), originator_version=version, topic="t", state=b"s")

        created = event(1)
        recorder.insert_events([created, event(2, created.originator_id)], idempotency=held)
        recorder.insert_events([event(3, created.originator_id)], idempotency=held)
        assert held.written == Written(events=3, created=1, aggregates={str(created.originator_id): [1, 3]})
        with pytest.raises(ClaimLost):
            recorder.insert_events([event(1), event(1)], idempotency=lost)
        assert sql.rows("SELECT written FROM {keys}") == [(held.written.dumps(),)]
        assert len(recorder.select_notifications(start=1, limit=10)) == 3  # nothing of the lost claim's save
        assert sql.rows("SELECT COUNT(*) FROM {leaves}") == [(3,)]


class TestLedgerSQLiteRecorder(ApplicationRecorderTestCase, MarksIdempotencyKeys):
    @pytest.fixture(autouse=True)
    def _db(self, tmp_path: Path) -> None:
        self.db_path = tmp_path / "recorder.db"

    def create_recorder(self) -> LedgerSQLiteRecorder:
        recorder = LedgerSQLiteRecorder(SQLiteDatastore(str(self.db_path)))
        recorder.create_table()
        return recorder

    def test_log_has_one_leaf_per_event(self) -> None:
        self.test_insert_select()
        recorder = self.create_recorder()
        with recorder.datastore.transaction(commit=False) as c:
            c.execute("SELECT COUNT(*), MIN(leaf_index), MAX(leaf_index) FROM merkle_leaves")
            leaves, low, high = c.fetchone()
            c.execute(f"SELECT COUNT(*) FROM {recorder.events_table_name}")
            events = c.fetchone()[0]
        assert leaves == events > 0 and (low, high) == (0, events - 1)


class TestLedgerPostgresRecorder(ApplicationRecorderTestCase, MarksIdempotencyKeys):
    @pytest.fixture(autouse=True)
    def _db(self, pg_dsn: str):
        self.dsn = pg_dsn
        self.schema = f"r_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.schema}"')
        self.datastores: list[PostgresDatastore] = []
        yield
        for datastore in self.datastores:
            datastore.close()
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{self.schema}" CASCADE')

    def create_recorder(self) -> LedgerPostgresRecorder:
        info = psycopg.conninfo.conninfo_to_dict(self.dsn)
        datastore = PostgresDatastore(dbname=info.get("dbname", "postgres"), host=info.get("host", "127.0.0.1"),
                                      port=str(info.get("port", 5432)), user=info.get("user", "postgres"),
                                      password=info.get("password", ""), schema=self.schema, pool_size=12)
        self.datastores.append(datastore)
        recorder = LedgerPostgresRecorder(datastore, events_table_name="stored_events")
        recorder.create_table()
        return recorder

    def test_log_has_one_leaf_per_event(self) -> None:
        self.test_insert_select()
        with psycopg.connect(self.dsn) as conn:
            leaves, low, high = conn.execute(
                f'SELECT COUNT(*), MIN(leaf_index), MAX(leaf_index) FROM "{self.schema}".merkle_leaves').fetchone()
            events = conn.execute(f'SELECT COUNT(*) FROM "{self.schema}".stored_events').fetchone()[0]
        assert leaves == events > 0 and (low, high) == (0, events - 1)


class TestLedgerPostgresRecorderOnAMultiHostUrl(TestLedgerPostgresRecorder):
    """The same cases through our factory (``ledger.pg_store``), configured as for a primary and its
    standby: a multi-host URL whose first host is down, and ``target_session_attrs=read-write``."""

    def create_recorder(self) -> LedgerPostgresRecorder:
        info = psycopg.conninfo.conninfo_to_dict(self.dsn)
        url = (f"postgresql://{info.get('user', 'postgres')}@127.0.0.1:{free_port()},{info.get('host', '127.0.0.1')}:"
               f"{info.get('port', 5432)}/{info.get('dbname', 'postgres')}?target_session_attrs=read-write"
               f"&schema={self.schema}&pool_size=12")
        env = Settings.from_environ({"CASELEDGER_DATABASE_URL": url}).persistence_env()
        assert env["PERSISTENCE_MODULE"] == "ledger.pg_store:LedgerPostgresFactory"
        factory = LedgerPostgresFactory(Environment(env=env))
        self.datastores.append(factory.datastore)
        recorder = factory.application_recorder()
        assert isinstance(recorder, LedgerPostgresRecorder)
        assert factory.datastore.pool.kwargs["target_session_attrs"] == "read-write"
        with factory.datastore.get_connection() as conn:
            assert conn.info.port == int(info.get("port", 5432))  # past the host that is down
        return recorder
