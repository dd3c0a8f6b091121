"""A transaction that reads and then writes (a subject's data key looked for, then made; an
idempotency claim) while another process writes: it waits for its turn, never fails at once.

On SQLite a plain ``BEGIN`` would hold a snapshot from the first read; a commit by another
connection before the first write makes that snapshot impossible to upgrade, and SQLite answers
"database is locked" without waiting (seen as a 500 in the full-disk chaos drill, on the data-key
insert of ``POST /customers``). ``SqlAccess.transaction`` takes the write lock first."""

from __future__ import annotations

import threading

from ledger.bootstrap import build
from ledger.sqlaccess import SqlAccess


def test_a_read_then_write_transaction_waits_for_a_concurrent_writer(env):
    first, second = build(env), build(env)  # two processes' ledgers on one database (API and scheduler)
    try:
        ours = SqlAccess(first.recorder, {"t": "probe_concurrent_writes"})
        theirs = SqlAccess(second.recorder, {"t": "probe_concurrent_writes"})
        ours.execute("CREATE TABLE IF NOT EXISTS {t} (k TEXT PRIMARY KEY)")
        errors: list[BaseException] = []

        def write_theirs() -> None:
            try:
                theirs.execute("INSERT INTO {t} (k) VALUES ('theirs')")
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        other = threading.Thread(target=write_theirs)
        with ours.transaction() as cursor:
            assert cursor.rows("SELECT count(*) FROM {t}") == [(0,)]
            other.start()
            other.join(0.3)  # it commits now, or waits for our commit
            cursor.execute("INSERT INTO {t} (k) VALUES ('ours')")
        other.join(10)
        assert not other.is_alive() and errors == []
        assert sorted(ours.rows("SELECT k FROM {t}")) == [("ours",), ("theirs",)]
    finally:
        first.close()
        second.close()
