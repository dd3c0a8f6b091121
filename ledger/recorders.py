"""Application recorders that keep the transparency log in the same transaction as the events.

Every stored event becomes one leaf of an RFC 9162 Merkle tree, in log order, with a gapless leaf
index — written by the very transaction that writes the event, so there is never an event
without its leaf or a leaf without its event. Only perfect subtrees are stored
(``merkle_nodes``: level ≥ 1; level 0 is ``merkle_leaves``), so appending costs O(log n) and any
proof O(log n) node reads.

Both backends also refuse UPDATE, DELETE (and on PostgreSQL TRUNCATE) of events, leaves, nodes
and checkpoints with triggers: the application never changes history, and the database will not
let anyone else do it by accident. (Deliberate tampering by a superuser who disables the
triggers is what ``caseledger verify`` detects.)

Selected with eventsourcing's ``APPLICATION_RECORDER_TOPIC`` in the composition root.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from psycopg.sql import SQL, Identifier

from ledger.integrity.leaf import encode_leaf
from ledger.integrity.merkle import Frontier, frontier_addresses, leaf_hash

LOG_TABLES = ("merkle_leaves", "merkle_nodes", "merkle_checkpoints")
APPEND_ONLY_MESSAGE = "caseledger: the ledger is append-only"


def new_log_rows(size: int, known: dict[tuple[int, int], bytes], stored_events: Sequence[StoredEvent],
                 notification_ids: Sequence[int]) -> tuple[list[tuple[int, int, bytes]], list[tuple[int, int, bytes]]]:
    """Leaves (leaf_index, notification_id, hash) and perfect nodes (level, index, hash) to insert."""
    frontier = Frontier.load(size, lambda level, index: known[(level, index)])
    leaves: list[tuple[int, int, bytes]] = []
    nodes: list[tuple[int, int, bytes]] = []
    for stored, notification_id in zip(stored_events, notification_ids, strict=True):
        digest = leaf_hash(encode_leaf(stored.originator_id, stored.originator_version, stored.topic, stored.state))
        leaves.append((frontier.size, notification_id, digest))
        nodes.extend(node for node in frontier.append(digest) if node[0] > 0)
    return leaves, nodes


class LedgerSQLiteRecorder(SQLiteApplicationRecorder):
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

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        notification_ids = super()._insert_events(c, stored_events, **kwargs)
        if stored_events:
            # The insert above took SQLite's write lock: the log's size cannot move under us.
            c.execute("SELECT MAX(leaf_index) FROM merkle_leaves")
            top = c.fetchone()[0]
            size = 0 if top is None else top + 1
            leaves, nodes = new_log_rows(size, self._known(c, size), stored_events, list(notification_ids or []))
            c.executemany("INSERT INTO merkle_leaves (leaf_index, notification_id, leaf_hash) VALUES (?, ?, ?)", leaves)
            c.executemany("INSERT INTO merkle_nodes (level, idx, hash) VALUES (?, ?, ?)", nodes)
        return notification_ids

    @staticmethod
    def _known(c: SQLiteCursor, size: int) -> dict[tuple[int, int], bytes]:
        known = {}
        for level, index in frontier_addresses(size):
            if level == 0:
                c.execute("SELECT leaf_hash FROM merkle_leaves WHERE leaf_index = ?", (index,))
            else:
                c.execute("SELECT hash FROM merkle_nodes WHERE level = ? AND idx = ?", (level, index))
            known[(level, index)] = bytes(c.fetchone()[0])
        return known


class LedgerPostgresRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        schema = Identifier(self.datastore.schema)
        self._leaves = SQL("{0}.merkle_leaves").format(schema)
        self._nodes = SQL("{0}.merkle_nodes").format(schema)
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
        ]
        for table in (self.events_table_name, *LOG_TABLES):
            self.sql_create_statements += [
                SQL("CREATE OR REPLACE TRIGGER caseledger_append_only BEFORE UPDATE OR DELETE ON {0}.{1} "
                    "FOR EACH ROW EXECUTE FUNCTION {0}.caseledger_append_only()").format(schema, Identifier(table)),
                SQL("CREATE OR REPLACE TRIGGER caseledger_no_truncate BEFORE TRUNCATE ON {0}.{1} "
                    "FOR EACH STATEMENT EXECUTE FUNCTION {0}.caseledger_append_only()").format(schema, Identifier(table)),
            ]

    def _create_table(self, curs: Any) -> None:
        # Several processes may start at once; creating functions and triggers concurrently fails.
        curs.execute("SELECT pg_advisory_xact_lock(hashtext('caseledger-create-tables'))")
        super()._create_table(curs)

    def _fetch_ids_after_insert_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        notification_ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        if stored_events:
            # The events table is locked IN EXCLUSIVE MODE by this transaction (eventsourcing does
            # that to keep insert order = commit order), so appends to the log are serialised too.
            curs.execute(SQL("SELECT MAX(leaf_index) AS top FROM {0}").format(self._leaves))
            top = curs.fetchone()["top"]
            size = 0 if top is None else top + 1
            leaves, nodes = new_log_rows(size, self._known(curs, size), stored_events, list(notification_ids or []))
            curs.executemany(SQL("INSERT INTO {0} (leaf_index, notification_id, leaf_hash) VALUES (%s, %s, %s)")
                             .format(self._leaves), leaves)
            if nodes:
                curs.executemany(SQL("INSERT INTO {0} (level, idx, hash) VALUES (%s, %s, %s)").format(self._nodes), nodes)
        return notification_ids

    def _known(self, curs: Any, size: int) -> dict[tuple[int, int], bytes]:
        addresses = frontier_addresses(size)
        if not addresses:
            return {}
        curs.execute(SQL("SELECT 0 AS level, leaf_index AS idx, leaf_hash AS hash FROM {0} WHERE leaf_index = %s "
                         "UNION ALL SELECT level, idx, hash FROM {1} WHERE (level, idx) IN (SELECT * FROM "
                         "unnest(%s::int[], %s::bigint[]))").format(self._leaves, self._nodes),
                     (_leaf_address(addresses), [lv for lv, _ in addresses], [ix for _, ix in addresses]))
        return {(row["level"], row["idx"]): bytes(row["hash"]) for row in curs.fetchall()}


def _leaf_address(addresses: Iterable[tuple[int, int]]) -> int:
    return next((index for level, index in addresses if level == 0), -1)
