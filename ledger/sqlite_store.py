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
from typing import Any

from eventsourcing.persistence import InterfaceError
from eventsourcing.sqlite import SQLITE3_DEFAULT_LOCK_TIMEOUT, SQLiteConnection, SQLiteConnectionPool, SQLiteFactory

STATEMENT_CACHE = 128


class StatementCachingPool(SQLiteConnectionPool):
    def _create_connection(self) -> SQLiteConnection:
        connection = super()._create_connection()  # as eventsourcing makes it (and the file switched to WAL)
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


class LedgerSQLiteFactory(SQLiteFactory):
    def __init__(self, env: Any):
        super().__init__(env)
        pool = self.datastore.pool  # no connection made yet: swap in the caching pool
        self.datastore.pool = StatementCachingPool(db_name=pool.db_name, lock_timeout=pool.lock_timeout)
