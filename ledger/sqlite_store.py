"""eventsourcing's SQLite infrastructure, with a real statement cache.

eventsourcing opens its SQLite connections with ``cached_statements=True``, which Python reads as
a cache of one statement: every transaction then parses each of its statements again (about
20 µs each on our machines — the Merkle log's few extra statements cost more in parsing than in
running). This factory gives the same connections a cache of ``STATEMENT_CACHE`` statements and
changes nothing else. It is selected in the composition root (``PERSISTENCE_MODULE``), so the
ledger, the projections and the benchmark's baseline recorder all use it.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from eventsourcing.persistence import InterfaceError
from eventsourcing.sqlite import SQLITE3_DEFAULT_LOCK_TIMEOUT, SQLiteConnection, SQLiteConnectionPool, SQLiteFactory

STATEMENT_CACHE = 128


#: Tries at opening a connection while another process switches a new database file to WAL.
WAL_SWITCH_TRIES = 50


class StatementCachingPool(SQLiteConnectionPool):
    def _create_connection(self) -> SQLiteConnection:
        connection = self._connect_in_wal_mode()
        if self.is_sqlite_memory_mode:
            return connection  # closing the first connection would drop an in-memory database
        try:
            caching = sqlite3.connect(database=self.db_name, uri=True, check_same_thread=False, isolation_level=None,
                                      cached_statements=STATEMENT_CACHE,
                                      timeout=self.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT)
        except (sqlite3.Error, TypeError) as e:
            raise InterfaceError(e) from e
        caching.row_factory = sqlite3.Row
        connection._sqlite_conn.close()  # noqa: SLF001 - the one thing we replace
        connection._sqlite_conn = caching  # noqa: SLF001
        return connection

    def _connect_in_wal_mode(self) -> SQLiteConnection:
        """eventsourcing's connection (and the file switched to WAL). Its ``PRAGMA journal_mode=WAL``
        fails at once with "database is locked", without waiting out the lock timeout, while another
        process is switching the same new file: processes starting together on a new database
        (the API's workers, the scheduler) try again after a moment."""
        for attempt in range(WAL_SWITCH_TRIES - 1):
            try:
                return super()._create_connection()
            except sqlite3.OperationalError as e:
                if "locked" not in str(e):
                    raise
                time.sleep(0.02 * (1 + attempt % 5))
        return super()._create_connection()  # the last try: its error is the caller's


class LedgerSQLiteFactory(SQLiteFactory):
    def __init__(self, env: Any):
        super().__init__(env)
        pool = self.datastore.pool  # no connection made yet: swap in the caching pool
        self.datastore.pool = StatementCachingPool(db_name=pool.db_name, lock_timeout=pool.lock_timeout)
