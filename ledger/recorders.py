"""Application recorders that keep the transparency log in the same transaction as the events.

Every stored event becomes one leaf of an RFC 9162 Merkle tree, in log order, with a gapless
leaf index — written by the very transaction that writes the event, so there is never an event
without its leaf or a leaf without its event. Interior nodes are stored from level
``merkle.STORED_LEVEL`` up (``merkle_nodes``; the leaves are ``merkle_leaves``): one node row per
16 leaves, appending stays O(log n), and a proof rebuilds the lower levels from at most 16 leaf
hashes per node it needs.

The write path is lean: leaf hashes are computed before the write lock is taken
(``fastpath.leaf_hashes``); the log's right edge (one hash per set bit of its size) is kept in
memory from this process's last commit and used only if the log still has that size under the
write lock (else it is read back: at most log2(n) node rows and 15 leaf hashes); leaves and nodes
go in with one statement each. On PostgreSQL the size query travels in the same round trip as
the event insert, so the log adds no round trip to a transaction.

Both backends also refuse UPDATE, DELETE (and on PostgreSQL TRUNCATE) of events, leaves, nodes
and checkpoints with triggers: the application never changes history, and the database will not
let anyone else do it by accident. On PostgreSQL, ``ledger.hardening`` adds role privileges on
top (the application role gets SELECT and INSERT only). Deliberate tampering by a superuser who
disables the triggers is what ``caseledger verify`` detects.

Selected with eventsourcing's ``APPLICATION_RECORDER_TOPIC`` in the composition root.
"""

from __future__ import annotations

import threading
from typing import Any, Sequence
from uuid import UUID

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

from ledger.integrity.fastpath import extend, leaf_hashes, load_frontier
from ledger.integrity.merkle import STORED_LEVEL, frontier_addresses

LOG_TABLES = ("merkle_leaves", "merkle_nodes", "merkle_checkpoints")
APPEND_ONLY_MESSAGE = "caseledger: the ledger is append-only"
LOCK_FUNCTION = "caseledger_lock_events"


def event_leaf_hashes(stored_events: Sequence[StoredEvent]) -> list[bytes]:
    """``leaf_hash(encode_leaf(...))`` of each stored event (see ``ledger.integrity.leaf``)."""
    return leaf_hashes((_id_bytes(s.originator_id), s.originator_version, s.topic, s.state) for s in stored_events)


def _id_bytes(originator_id: UUID | str) -> bytes:
    return originator_id.bytes if isinstance(originator_id, UUID) else UUID(str(originator_id)).bytes


class _LogHead:
    """The log's size and right edge as of this process's last commit (a cache, never trusted
    without checking the size under the write lock: the log is append-only, so same size means
    same tree)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._size, self._frontier = -1, []

    def frontier_at(self, size: int) -> list[bytes] | None:
        with self._lock:
            return list(self._frontier) if self._size == size else None

    def committed(self, size: int, frontier: list[bytes]) -> None:
        with self._lock:
            self._size, self._frontier = size, frontier


def _tail_start(size: int) -> int:
    return size - size % (1 << STORED_LEVEL)


def _stored_addresses(size: int) -> list[tuple[int, int]]:
    return frontier_addresses(_tail_start(size))


class LedgerSQLiteRecorder(SQLiteApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._head = _LogHead()

    def construct_create_table_statements(self) -> list[str]:
        statements = super().construct_create_table_statements()
        statements += [
            "CREATE TABLE IF NOT EXISTS merkle_leaves (leaf_index INTEGER PRIMARY KEY, "
            "notification_id INTEGER NOT NULL UNIQUE, leaf_hash BLOB NOT NULL)",
            "CREATE TABLE IF NOT EXISTS merkle_nodes (level INTEGER NOT NULL, idx INTEGER NOT NULL, "
            "hash BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID",
            "CREATE TABLE IF NOT EXISTS merkle_checkpoints (id INTEGER PRIMARY KEY, tree_size INTEGER NOT NULL, "
            "root BLOB NOT NULL, created_at TEXT NOT NULL, note TEXT NOT NULL)",
        ]
        for table in (self.events_table_name, *LOG_TABLES):
            for op in ("UPDATE", "DELETE"):
                statements.append(
                    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}: {op} on {table}'); END")
        return statements

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        hashes = event_leaf_hashes(stored_events)  # before the write lock is taken
        head: list[tuple[int, list[bytes]]] = []
        with self.datastore.transaction(commit=True) as c:
            notification_ids = self._insert_events(c, stored_events, leaf_hashes=hashes, new_head=head, **kwargs)
        if head:
            self._head.committed(*head[0])
        return notification_ids

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], *,
                       leaf_hashes: list[bytes] | None = None, new_head: list | None = None,
                       **kwargs: Any) -> Sequence[int] | None:
        notification_ids = super()._insert_events(c, stored_events, **kwargs)
        if stored_events:
            # The insert above took SQLite's write lock: the log's size cannot move under us.
            c.execute("SELECT MAX(leaf_index) FROM merkle_leaves")
            top = c.fetchone()[0]
            size = 0 if top is None else top + 1
            frontier = self._head.frontier_at(size)
            if frontier is None:
                frontier = self._load_frontier(c, size)
            hashes = leaf_hashes if leaf_hashes is not None else event_leaf_hashes(stored_events)
            frontier, nodes = extend(size, frontier, hashes)
            c.executemany("INSERT INTO merkle_leaves (leaf_index, notification_id, leaf_hash) VALUES (?, ?, ?)",
                          zip(range(size, size + len(hashes)), notification_ids or [], hashes, strict=True))
            if nodes:
                c.executemany("INSERT INTO merkle_nodes (level, idx, hash) VALUES (?, ?, ?)", nodes)
            if new_head is not None:
                new_head.append((size + len(hashes), frontier))
        return notification_ids

    @staticmethod
    def _load_frontier(c: SQLiteCursor, size: int) -> list[bytes]:
        stored = {}
        for level, index in _stored_addresses(size):
            c.execute("SELECT hash FROM merkle_nodes WHERE level = ? AND idx = ?", (level, index))
            stored[(level, index)] = bytes(c.fetchone()[0])
        c.execute("SELECT leaf_hash FROM merkle_leaves WHERE leaf_index >= ? ORDER BY leaf_index", (_tail_start(size),))
        tail = [bytes(row[0]) for row in c.fetchall()]
        return load_frontier(size, lambda level, index: stored[(level, index)], tail)


class LedgerPostgresRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._head = _LogHead()
        schema = Identifier(self.datastore.schema)
        events = SQL("{0}.{1}").format(schema, Identifier(self.events_table_name))
        self._leaves = SQL("{0}.merkle_leaves").format(schema)
        self._nodes = SQL("{0}.merkle_nodes").format(schema)
        self._lock_function = SQL("{0}.{1}").format(schema, Identifier(LOCK_FUNCTION))
        self.sql_create_statements += [
            SQL("CREATE TABLE IF NOT EXISTS {0} (leaf_index bigint PRIMARY KEY, notification_id bigint NOT NULL "
                "UNIQUE, leaf_hash bytea NOT NULL)").format(self._leaves),
            SQL("CREATE TABLE IF NOT EXISTS {0} (level integer NOT NULL, idx bigint NOT NULL, hash bytea NOT NULL, "
                "PRIMARY KEY (level, idx))").format(self._nodes),
            SQL("CREATE TABLE IF NOT EXISTS {0}.merkle_checkpoints (id bigserial PRIMARY KEY, tree_size bigint NOT "
                "NULL, root bytea NOT NULL, created_at timestamptz NOT NULL, note text NOT NULL)").format(schema),
            SQL("CREATE OR REPLACE FUNCTION {0}.caseledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "BEGIN RAISE EXCEPTION '" + APPEND_ONLY_MESSAGE + ": % on %', TG_OP, TG_TABLE_NAME "
                "USING ERRCODE = 'insufficient_privilege'; END $$").format(schema),
            # eventsourcing serialises writers with LOCK TABLE … IN EXCLUSIVE MODE, which PostgreSQL
            # allows only to roles that may UPDATE, DELETE or TRUNCATE the table. A role that does
            # not own the tables (see ledger.hardening) takes the lock through this function instead
            # (it runs with its owner's rights; the lock lasts until the caller's transaction ends).
            SQL("CREATE OR REPLACE FUNCTION {0}() RETURNS void LANGUAGE plpgsql SECURITY DEFINER "
                "SET search_path = pg_catalog, pg_temp AS $$ BEGIN LOCK TABLE {1} IN EXCLUSIVE MODE; END $$")
            .format(self._lock_function, events),
        ]
        for table in (self.events_table_name, *LOG_TABLES):
            self.sql_create_statements += [
                SQL("CREATE OR REPLACE TRIGGER caseledger_append_only BEFORE UPDATE OR DELETE ON {0}.{1} "
                    "FOR EACH ROW EXECUTE FUNCTION {0}.caseledger_append_only()").format(schema, Identifier(table)),
                SQL("CREATE OR REPLACE TRIGGER caseledger_no_truncate BEFORE TRUNCATE ON {0}.{1} "
                    "FOR EACH STATEMENT EXECUTE FUNCTION {0}.caseledger_append_only()").format(schema, Identifier(table)),
            ]
        self._lock_through_function = [self.lock_table_statements[0], SQL("SELECT {0}()").format(self._lock_function)]
        self._size_statement = SQL("SELECT MAX(leaf_index) AS top FROM {0}").format(self._leaves)
        # Binary parameters (%b): arrays of hashes go as raw bytes, not hex text quoted with regexes.
        self._insert_leaves = SQL("INSERT INTO {0} (leaf_index, notification_id, leaf_hash) SELECT * FROM "
                                  "unnest(%b::bigint[], %b::bigint[], %b::bytea[])").format(self._leaves)
        self._insert_nodes = SQL("INSERT INTO {0} (level, idx, hash) SELECT * FROM "
                                 "unnest(%b::int[], %b::bigint[], %b::bytea[])").format(self._nodes)

    def create_table(self) -> None:
        if self._managed_by_another_role():
            # Hardened: not our tables. Take eventsourcing's writer lock through the owner's function.
            self.lock_table_statements = self._lock_through_function
            self.datastore.register_type_adapters()
            return
        super().create_table()

    def _managed_by_another_role(self) -> bool:
        """True when the events table exists and belongs to a role we are not: a hardened
        deployment (see ``ledger.hardening``), where the owner creates and alters the schema."""
        with self.datastore.get_connection() as conn:
            row = conn.execute("SELECT pg_has_role(c.relowner, 'USAGE') AS mine FROM pg_class c JOIN pg_namespace n "
                               "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
                               (self.datastore.schema or "public", self.events_table_name)).fetchone()
        return row is not None and not row["mine"]

    def _create_table(self, curs: Any) -> None:
        # Several processes may start at once; creating functions and triggers concurrently fails.
        curs.execute("SELECT pg_advisory_xact_lock(hashtext('caseledger-create-tables'))")
        super()._create_table(curs)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """eventsourcing's pipelined insert, with the log appended in the same transaction."""
        hashes = event_leaf_hashes(stored_events)  # before the table lock is taken
        exc: Exception | None = None
        notification_ids: Sequence[int] | None = None
        head: tuple[int, list[bytes]] | None = None
        with self.datastore.get_connection() as conn:
            with conn.pipeline() as pipeline, conn.transaction():
                with conn.cursor() as curs:
                    self._insert_events(curs, stored_events, **kwargs)
                if len(stored_events) > 0:
                    with conn.cursor() as curs, conn.cursor() as size_cursor:
                        try:
                            self._insert_stored_events(curs, stored_events, **kwargs)  # lock, notify, insert
                            size_cursor.execute(self._size_statement, prepare=True)  # same round trip as the insert
                            # Sync now, so a uniqueness violation raises IntegrityError here.
                            pipeline.sync()
                            notification_ids = self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
                            top = size_cursor.fetchone()["top"]
                            head = self._append_log(curs, 0 if top is None else top + 1, notification_ids, hashes)
                        except Exception as e:  # noqa: BLE001 - re-raised below, outside the pipeline
                            exc = e
            if exc:
                raise exc
        if head is not None:
            self._head.committed(*head)
        return notification_ids

    def _append_log(self, curs: Any, size: int, notification_ids: Sequence[int],
                    hashes: list[bytes]) -> tuple[int, list[bytes]]:
        # The events table is locked IN EXCLUSIVE MODE by this transaction (eventsourcing does
        # that to keep insert order = commit order), so appends to the log are serialised too.
        frontier = self._head.frontier_at(size)
        if frontier is None:
            frontier = self._load_frontier(curs, size)
        frontier, nodes = extend(size, frontier, hashes)
        if len(notification_ids) != len(hashes):
            raise RuntimeError(f"{len(hashes)} events but {len(notification_ids)} notification ids")
        curs.execute(self._insert_leaves, (list(range(size, size + len(hashes))), list(notification_ids), hashes),
                     prepare=True)
        if nodes:
            levels, indexes, digests = zip(*nodes)
            curs.execute(self._insert_nodes, (list(levels), list(indexes), list(digests)), prepare=True)
        return size + len(hashes), frontier

    def _load_frontier(self, curs: Any, size: int) -> list[bytes]:
        addresses = _stored_addresses(size)
        curs.execute(SQL("SELECT level, idx, hash FROM {0} WHERE (level, idx) IN (SELECT * FROM "
                         "unnest(%s::int[], %s::bigint[]))").format(self._nodes),
                     ([lv for lv, _ in addresses], [ix for _, ix in addresses]))
        stored = {(row["level"], row["idx"]): bytes(row["hash"]) for row in curs.fetchall()}
        curs.execute(SQL("SELECT leaf_hash FROM {0} WHERE leaf_index >= %s ORDER BY leaf_index").format(self._leaves),
                     (_tail_start(size),))
        tail = [bytes(row["leaf_hash"]) for row in curs.fetchall()]
        return load_frontier(size, lambda level, index: stored[(level, index)], tail)
