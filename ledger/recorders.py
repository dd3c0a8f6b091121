"""Application recorders that keep the transparency log in the same transaction as the events.

Every stored event becomes one leaf of an RFC 9162 Merkle tree, in log order, with a gapless
leaf index — written by the very transaction that writes the event, so there is never an event
without its leaf or a leaf without its event. Interior nodes are stored from level
``merkle.STORED_LEVEL`` up (``merkle_nodes``; the leaves are ``merkle_leaves``): one node row per
16 leaves, appending stays O(log n), and a proof rebuilds the lower levels from at most 16 leaf
hashes per node it needs.

The write path is lean, because the log's cost is measured against eventsourcing's plain
recorder (``bench/integrity.py``, issue 5: at least 0.8× its append rate). What does not need the
write lock is done before it is taken (``ledger.log_append``): the leaf hashes and, from the log's
head as of this process's last commit, the new nodes. Under the lock that plan is used only if the
log still has the size it was made for, else placed again after the actual size (reading at most
log2(n) node rows and 15 leaf hashes) — and the size is checked without a statement of its own:

- PostgreSQL: events, leaves and nodes go in with one statement (``ledger.pg_append``: ``WITH ev AS
  (INSERT … RETURNING …), lv AS (INSERT …), nd AS (INSERT …) …``, arrays as binary parameters)
  whose node insert only happens if ``MAX(leaf_index)`` (read in the statement's snapshot, after
  the table lock) is the planned one. The leaves always go in, after the actual last leaf; if the
  plan missed, the statement also returns the leaves appended since the plan's size, the plan is
  carried over them in memory and its nodes go with the COMMIT. A transaction takes two round
  trips, or one with the COMMIT sent along while this process's plans fit and no key is marked
  (eventsourcing's insert takes five).
- SQLite: batches smaller than ``SQLITE_SET_INSERT`` go in as eventsourcing inserts them and the leaves
  with one statement that lets SQLite number them (leaf_index is the rowid: largest + 1); where
  they went is the size check. Larger batches go in with one ``executemany`` (consecutive rowids,
  read back with the log's size in one query) and the leaves with one set-based statement.
  Each statement costs a parse on SQLite (eventsourcing's connections cache a single statement),
  and each page written costs at commit (WAL + fsync), hence so few statements.

Both recorders also mark the idempotency key of the request being served, if it carries one
(``idempotency=`` of ``insert_events``, passed by ``CaseLedger``; see ``ledger.idempotency``): in
the same transaction as the events, so a key is "written" exactly when its events are stored, and
only while the request still holds the key — else nothing is written (``ClaimLost``).

Both backends also refuse UPDATE, DELETE (and on PostgreSQL TRUNCATE) of events, leaves, nodes
and checkpoints with triggers: the application never changes history, and the database will not
let anyone else do it by accident. On PostgreSQL, ``ledger.hardening`` adds role privileges on
top (the application role gets SELECT and INSERT only). Deliberate tampering by a superuser who
disables the triggers is what ``caseledger verify`` detects.

Selected with eventsourcing's ``APPLICATION_RECORDER_TOPIC`` in the composition root.
"""

from __future__ import annotations

from typing import Any, Sequence
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from psycopg.sql import SQL, Identifier

from ledger.idempotency import TABLE as KEYS_TABLE, Claim, Written, mark_statement, table_statements
from ledger.integrity import fastpath
from ledger.log_append import AppendPlan, LogHead, claim_lost, stored_edge_addresses, tail_start
from ledger.pg_append import PostgresLogAppend, append_statement
from ledger.sqlaccess import SCHEMA_LOCK

LOG_TABLES = ("merkle_leaves", "merkle_nodes", "merkle_checkpoints")
APPEND_ONLY_MESSAGE = "caseledger: the ledger is append-only"
LOCK_FUNCTION = "caseledger_lock_events"
SQLITE_SET_INSERT = 32  # from this many events, SQLite writes the leaves with one set-based statement
INSERT_LEAF = "INSERT INTO merkle_leaves (leaf_index, notification_id, leaf_hash) VALUES (?, ?, ?)"


def _rendered(statement: Any) -> bytes:
    return statement.as_bytes(None)


class LedgerSQLiteRecorder(SQLiteApplicationRecorder):
    marks_idempotency_keys = True
    _mark_statement = mark_statement(KEYS_TABLE, pg=False)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._head = LogHead()

    def construct_create_table_statements(self) -> list[str]:
        statements = super().construct_create_table_statements()
        statements += [
            # No index on notification_id: it would cost a B-tree page per commit, and leaves are
            # found by position instead (leaf_index = rowid - 1, see TransparencyLog.leaf_of).
            "CREATE TABLE IF NOT EXISTS merkle_leaves (leaf_index INTEGER PRIMARY KEY, "
            "notification_id INTEGER NOT NULL, leaf_hash BLOB NOT NULL)",
            "CREATE TABLE IF NOT EXISTS merkle_nodes (level INTEGER NOT NULL, idx INTEGER NOT NULL, "
            "hash BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID",
            "CREATE TABLE IF NOT EXISTS merkle_checkpoints (id INTEGER PRIMARY KEY, tree_size INTEGER NOT NULL, "
            "root BLOB NOT NULL, created_at TEXT NOT NULL, note TEXT NOT NULL)",
            *table_statements(KEYS_TABLE, pg=False),
        ]
        for table in (self.events_table_name, *LOG_TABLES):
            for op in ("UPDATE", "DELETE"):
                statements.append(
                    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}: {op} on {table}'); END")
        return statements

    def insert_events(self, stored_events: Sequence[StoredEvent], *, idempotency: Claim | None = None,
                      **kwargs: Any) -> Sequence[int] | None:
        plan = self._head.plan(stored_events)  # before the write lock is taken
        written: Written | None = None
        with self.datastore.transaction(commit=True) as c:
            notification_ids = self._insert_events(c, stored_events, plan=plan, **kwargs)
            if idempotency is not None and stored_events:
                written, params = idempotency.mark(stored_events)
                c.execute(self._mark_statement, params)
                if not c.fetchall():
                    raise claim_lost(idempotency)  # rolls the events back
        if stored_events:
            self._head.committed(plan)  # the leaves went in with this plan: see _insert_events
        if written is not None:
            idempotency.written = written
        return notification_ids

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], *,
                       plan: AppendPlan | None = None, **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return super()._insert_events(c, stored_events, **kwargs)
        if plan is None:
            plan = self._head.plan(stored_events)
        if len(stored_events) < SQLITE_SET_INSERT:
            notification_ids = super()._insert_events(c, stored_events, **kwargs)  # takes the write lock
            if plan.size > 1:
                # No statement to read the log's size: SQLite numbers the leaves (largest + 1),
                # then the plan is checked against where they went.
                first = self._append_leaves(c, plan, notification_ids)
                if first != plan.size:  # another process has appended since this one's last commit
                    if first <= 1:  # the log shrank (or, empty, numbered from 1): only tampering does that
                        raise RuntimeError(f"the log has {first} leaves, this process saw {plan.size}")
                    self._head.place(plan, first, lambda size: self._load_frontier(c, size))
            else:
                self._head.place(plan, self._log_size(c), lambda size: self._load_frontier(c, size))
                c.executemany(INSERT_LEAF, plan.leaf_rows(notification_ids))
        else:
            notification_ids, size = self._insert_event_rows(c, stored_events)
            self._head.place(plan, size, lambda size: self._load_frontier(c, size))
            self._insert_leaf_set(c, plan, notification_ids)
        if plan.nodes:
            c.executemany("INSERT INTO merkle_nodes (level, idx, hash) VALUES (?, ?, ?)", plan.nodes)
        return notification_ids

    @staticmethod
    def _append_leaves(c: SQLiteCursor, plan: AppendPlan, notification_ids: Sequence[int]) -> int:
        """Insert the leaves after the last one, numbered by SQLite; returns the first leaf's index.
        (leaf_index is the rowid: a NULL one becomes the largest + 1, and leaves are never deleted.)"""
        if len(notification_ids) != len(plan.hashes):
            raise RuntimeError(f"{len(plan.hashes)} events but {len(notification_ids)} notification ids")
        c.execute("INSERT INTO merkle_leaves (leaf_index, notification_id, leaf_hash) VALUES "
                  + ", ".join(["(NULL, ?, ?)"] * len(notification_ids)),
                  [value for row in zip(notification_ids, plan.hashes) for value in row])
        return c.lastrowid - len(notification_ids) + 1

    def _insert_event_rows(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent]) -> tuple[list[int], int]:
        """Insert a batch of events with one executemany; their notification ids, and the log's size."""
        hex_ids = {oid: oid.hex if isinstance(oid, UUID) else oid for oid in {s.originator_id for s in stored_events}}
        c.executemany(self.insert_events_statement,
                      [(hex_ids[s.originator_id], s.originator_version, s.topic, s.state) for s in stored_events])
        # We hold the write lock and rows are never deleted (trigger): the batch got consecutive rowids.
        c.execute("SELECT last_insert_rowid(), MAX(leaf_index) FROM merkle_leaves")
        last, top = c.fetchone()
        if last >= (1 << 63) - 1:  # past this SQLite picks rowids at random
            raise OverflowError("the events table has used up its rowids")
        return list(range(last - len(stored_events) + 1, last + 1)), 0 if top is None else top + 1

    @staticmethod
    def _log_size(c: SQLiteCursor) -> int:
        c.execute("SELECT MAX(leaf_index) FROM merkle_leaves")
        top = c.fetchone()[0]
        return 0 if top is None else top + 1

    @staticmethod
    def _insert_leaf_set(c: SQLiteCursor, plan: AppendPlan, notification_ids: list[int]) -> None:
        """All the batch's leaves with one statement, no binding per row: the notification ids are
        consecutive (see _insert_event_rows) and the hashes go as one blob cut into 32-byte pieces."""
        c.execute("INSERT INTO merkle_leaves (leaf_index, notification_id, leaf_hash) "
                  "WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i + 1 < ?) "
                  "SELECT ? + i, ? + i, substr(?, 32 * i + 1, 32) FROM k",
                  (len(plan.hashes), plan.size, notification_ids[0], b"".join(plan.hashes)))

    @staticmethod
    def _load_frontier(c: SQLiteCursor, size: int) -> list[bytes]:
        stored = {}
        for level, index in stored_edge_addresses(size):
            c.execute("SELECT hash FROM merkle_nodes WHERE level = ? AND idx = ?", (level, index))
            stored[(level, index)] = bytes(c.fetchone()[0])
        c.execute("SELECT leaf_hash FROM merkle_leaves WHERE leaf_index >= ? AND leaf_index < ? ORDER BY leaf_index",
                  (tail_start(size), size))
        tail = [bytes(row[0]) for row in c.fetchall()]
        return fastpath.load_frontier(size, lambda level, index: stored[(level, index)], tail)


class LedgerPostgresRecorder(PostgresLogAppend, PostgresApplicationRecorder):
    marks_idempotency_keys = True

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._head = LogHead()
        schema = Identifier(self.datastore.schema)
        events = SQL("{0}.{1}").format(schema, Identifier(self.events_table_name))
        self._leaves = SQL("{0}.merkle_leaves").format(schema)
        self._nodes = SQL("{0}.merkle_nodes").format(schema)
        self._lock_function = SQL("{0}.{1}").format(schema, Identifier(LOCK_FUNCTION))
        keys = SQL("{0}.{1}").format(schema, Identifier(KEYS_TABLE))
        self.sql_create_statements += [
            SQL("CREATE TABLE IF NOT EXISTS {0} (leaf_index bigint PRIMARY KEY, notification_id bigint NOT NULL "
                "UNIQUE, leaf_hash bytea NOT NULL)").format(self._leaves),
            SQL("CREATE TABLE IF NOT EXISTS {0} (level integer NOT NULL, idx bigint NOT NULL, hash bytea NOT NULL, "
                "PRIMARY KEY (level, idx))").format(self._nodes),
            SQL("CREATE TABLE IF NOT EXISTS {0}.merkle_checkpoints (id bigserial PRIMARY KEY, tree_size bigint NOT "
                "NULL, root bytea NOT NULL, created_at timestamptz NOT NULL, note text NOT NULL)").format(schema),
            *(SQL(s).format(table=keys) for s in table_statements("{table}", pg=True)),
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
        # The statements of the write path are rendered to bytes once: psycopg would otherwise
        # compose them anew on every execute (~50 µs for the append statement).
        self.lock_table_statements = [_rendered(s) for s in self.lock_table_statements]
        self._lock_through_function = [self.lock_table_statements[0],
                                       _rendered(SQL("SELECT {0}()").format(self._lock_function))]
        self._notify_statement = _rendered(SQL("NOTIFY {0}").format(Identifier(self.channel_name)))
        self._mark_statement = _rendered(SQL(mark_statement("{table}", pg=True)).format(table=keys))
        # Binary parameters (%b): arrays of hashes go as raw bytes, not hex text quoted with regexes.
        self._insert_nodes = _rendered(SQL("INSERT INTO {0} (level, idx, hash) SELECT * FROM "
                                           "unnest(%b::int[], %b::bigint[], %b::bytea[])").format(self._nodes))
        # Events, leaves and nodes in one statement (ledger.pg_append).
        oid = SQL("{0}[]").format(Identifier(self.datastore.originator_id_type))
        self._append_statement = _rendered(append_statement(events, self._leaves, self._nodes, oid))
        self._edge_nodes = _rendered(SQL("SELECT level, idx, hash FROM {0} WHERE (level, idx) IN (SELECT * FROM "
                                         "unnest(%b::int[], %b::bigint[]))").format(self._nodes))
        self._tail_leaves = _rendered(SQL("SELECT leaf_hash FROM {0} WHERE leaf_index >= %b AND leaf_index < %b "
                                          "ORDER BY leaf_index").format(self._leaves))

    def _notify_channel(self, curs: Any) -> None:
        curs.execute(self._notify_statement)

    def create_table(self) -> None:
        if self._managed_by_another_role():
            # Hardened: not our tables. Take eventsourcing's writer lock through the owner's function.
            self.lock_table_statements = self._lock_through_function
            self.datastore.register_type_adapters()
            return
        try:
            super().create_table()
        except IntegrityError:
            # eventsourcing creates its composite types outside the table transaction (there is no
            # CREATE TYPE IF NOT EXISTS) and ignores "already exists", but two processes creating
            # one at the same moment get a unique violation on the catalog instead. The type
            # exists now; the second attempt finds it.
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
        curs.execute(SCHEMA_LOCK)
        super()._create_table(curs)
