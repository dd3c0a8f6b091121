"""The PostgreSQL write path: the statement that appends events with their log rows, and the
transaction around it (``PostgresLogAppend``, a mixin of ``ledger.recorders.LedgerPostgresRecorder``).

One statement, after eventsourcing's table lock, writes the events, their leaves and — if the log
still has the size the plan was made for — the plan's interior nodes. The leaves do not depend on
where the log ends (a leaf is the hash of its event), so they always go in, numbered after the
log's actual last leaf; only the nodes do. The statement answers, in its first row, the log's
size before it (``top``: its largest leaf index) and, if the plan did not fit, the hashes of the
leaves the other processes appended after the plan's size (``newer``, at most ``NEWER_LEAVES``).
From those the recorder carries its cached right edge over to the actual size and sends the
nodes with the commit: a miss costs no round trip, and the table lock is held no longer than for
a hit. (It used to cost three: read the size, the stored right edge and the last leaves — while
every other writer waited on the lock, so that under 16 clients, when most appends miss, those
round trips serialised the writers.)

With ``commit`` (no idempotency key to mark, and a plan placed), the COMMIT is sent with the
statement — one round trip, and the table lock is held only while the server runs them — so the
statement must refuse what the recorder would have to finish before committing: if the plan
missed and the batch completes a stored node at the actual size (one append in 16 at one event
each), it fails (a division by zero, its only one), nothing is written, and the recorder appends
again in two round trips. A miss that completes no node commits as it is: the nodes do not
depend on where the leaves went, and there are none. A refusal leaves the log at the size that
completes the node, so every other one-trip append that misses is refused there too, until a
two-trip append fills it: under several writers (16 threads in 4 processes) that cascade refused
55% of the appends and halved the rate. So the one-trip append is tried only while this process's
plans fit (``LogHead.fitted``: its last append found the log where it planned — one writer, or
writers taking turns slowly); once they miss, appends take two trips until one fits again.

Everything is read in the statement's snapshot, taken after the table lock: no writer can slip
in between, and the leaves it inserts itself are not in it (a data-modifying WITH's rows are not
visible to the rest of its statement).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from itertools import pairwise
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.utils import retry
from psycopg import errors
from psycopg.pq import TransactionStatus
from psycopg.sql import SQL, Composable

from ledger.idempotency import Claim, Written
from ledger.integrity import fastpath
from ledger.integrity.merkle import STORED_LEVEL
from ledger.log_append import AppendPlan, claim_lost, stored_edge_addresses, tail_start

_BEGIN, _COMMIT, _ROLLBACK = b"BEGIN", b"COMMIT", b"ROLLBACK"
#: The most leaf hashes a miss reads back (32 bytes each); a process further behind than that
#: (idle while others appended) reads the stored right edge instead.
NEWER_LEAVES = 1024


def append_statement(events: Composable, leaves: Composable, nodes: Composable, oid: Composable) -> Composable:
    """Events, leaves and (if the plan fits) nodes in one statement; notification ids in the
    order of the events, ``logged`` (leaves written), and in the first row ``top`` and ``newer``."""
    return SQL(
        "WITH ev AS (INSERT INTO {events} (originator_id, originator_version, topic, state) SELECT * FROM "
        "unnest(%(ids)b::{oid}, %(versions)b::bigint[], %(topics)b::text[], %(states)b::bytea[]) "
        "RETURNING notification_id, originator_id, originator_version), "
        "head AS (SELECT MAX(leaf_index) AS top FROM {leaves}), "
        "fits AS (SELECT %(placed)b::bool AND top IS NOT DISTINCT FROM %(top)b::bigint AS ok FROM head), "
        # each leaf is joined to its event by (id, version) and numbered in notification-id order
        "lv AS (INSERT INTO {leaves} (leaf_index, notification_id, leaf_hash) "
        "SELECT COALESCE((SELECT top FROM head), -1) + row_number() OVER (ORDER BY ev.notification_id), "
        "ev.notification_id, h.leaf_hash FROM ev JOIN unnest(%(ids)b::{oid}, %(versions)b::bigint[], "
        "%(hashes)b::bytea[]) AS h(originator_id, originator_version, leaf_hash) "
        "USING (originator_id, originator_version) RETURNING 1), "
        "nd AS (INSERT INTO {nodes} (level, idx, hash) SELECT * FROM "
        "unnest(%(levels)b::int[], %(indexes)b::bigint[], %(digests)b::bytea[]) WHERE (SELECT ok FROM fits)) "
        "SELECT ev.notification_id, (SELECT COUNT(*) FROM lv) AS logged, "
        "CASE WHEN o.n = 1 THEN (SELECT top FROM head) END AS top, "
        "CASE WHEN o.n = 1 AND %(placed)b::bool AND NOT (SELECT ok FROM fits) THEN (SELECT "
        "array_agg(leaf_hash ORDER BY leaf_index) FROM {leaves} WHERE leaf_index >= %(size)b::bigint "
        "AND leaf_index < %(size)b::bigint + {newer}) END AS newer, "
        # The refusal (see the module's docstring): a division by zero, the statement's only one.
        "CASE WHEN o.n = 1 AND %(commit)b::bool THEN 1 / (CASE WHEN (SELECT COUNT(*) FROM lv) = "
        "cardinality(%(hashes)b::bytea[]) AND ((SELECT ok FROM fits) OR mod(COALESCE((SELECT top FROM head), -1) + 1, "
        "{block}) + cardinality(%(hashes)b::bytea[]) < {block}) THEN 1 ELSE 0 END) END AS committable "
        "FROM ev JOIN unnest(%(ids)b::{oid}, %(versions)b::bigint[]) WITH ORDINALITY "
        "AS o(originator_id, originator_version, n) USING (originator_id, originator_version) ORDER BY o.n"
    ).format(events=events, leaves=leaves, nodes=nodes, oid=oid, newer=SQL(str(NEWER_LEAVES)),
                block=SQL(str(1 << STORED_LEVEL)))


def _roll_back(conn: Any) -> None:
    """End the transaction an insert left open (or aborted) on ``conn``; if the connection is
    broken, the pool discards it. Through libpq, not ``conn.execute``: psycopg takes a ROLLBACK for a
    reason to drop every prepared statement (DEALLOCATE ALL at its next statement), and statements
    it prepares in the meantime would go with them. A rollback keeps them (they are not transactional)."""
    if conn.pgconn.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
        with suppress(psycopg.Error):
            conn.pgconn.exec_(_ROLLBACK)


class PostgresLogAppend:
    """The write path of ``ledger.recorders.LedgerPostgresRecorder`` (a mixin of it): its statements
    are made there."""

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], *, idempotency: Claim | None = None,
                      **kwargs: Any) -> Sequence[int] | None:
        """eventsourcing's pipelined insert (lock, notify, insert), with the events, their leaves and
        the new nodes written by one statement (and the idempotency key's mark by one more), in one
        round trip with the COMMIT when there is no key to mark and the statement need not be
        finished by us (``ledger.pg_append``), else in two: BEGIN … the statements, then COMMIT
        (with the nodes, if the plan missed). psycopg's ``transaction()`` in a pipeline costs three
        more (one to enter, two to leave): eventsourcing's insert takes five, three of them holding
        the table lock."""
        plan = self._head.plan(stored_events)  # before the table lock is taken
        written: Written | None = None
        with self.datastore.get_connection() as conn:
            try:
                notification_ids = None
                if idempotency is None and plan.placed and stored_events and self._head.fitted:
                    notification_ids = self._append_committing(conn, stored_events, plan, **kwargs)
                if notification_ids is None:
                    notification_ids, written = self._append(conn, stored_events, plan, idempotency, **kwargs)
            except BaseException:
                _roll_back(conn)  # a check of ours (a lost claim, a log that does not add up) or any error
                raise
        if written is not None:
            idempotency.written = written
        return notification_ids if stored_events else None

    def _begin(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        curs.execute(_BEGIN)
        self._insert_events(curs, stored_events, **kwargs)
        if stored_events:
            self._lock_table(curs)
            self._notify_channel(curs)

    def _append_committing(self, conn: Any, stored_events: Sequence[StoredEvent], plan: AppendPlan,
                           **kwargs: Any) -> list[int] | None:
        """The append and its COMMIT in one round trip; None if the statement refused (the plan
        missed and its nodes must be placed again: nothing written, the transaction aborted)."""
        try:
            with conn.cursor() as curs, conn.cursor() as commit:
                with conn.pipeline():
                    self._begin(curs, stored_events, **kwargs)
                    curs.execute(self._append_statement, self._append_params(stored_events, plan, commit=True),
                                 prepare=True)
                    commit.execute(_COMMIT)
                # the pipeline's exit sent it all and read the answers (a sync of ours would cost a trip)
                rows = curs.fetchall()
        except errors.DivisionByZero:
            return None
        notification_ids = [row["notification_id"] for row in rows]
        size = 0 if rows[0]["top"] is None else rows[0]["top"] + 1
        self._head.fitted = size == plan.size
        if self._head.follow(plan, size, rows[0]["newer"]):  # a miss committed only if it completes no node
            self._head.committed(plan)
        else:
            self._head.forget()  # too far behind to carry the head over: the next append reads it
        return notification_ids

    def _append(self, conn: Any, stored_events: Sequence[StoredEvent], plan: AppendPlan, idempotency: Claim | None,
                **kwargs: Any) -> tuple[list[int] | None, Written | None]:
        """Two round trips: the statements, then the nodes (if the plan missed) with the COMMIT."""
        written: Written | None = None
        notification_ids: list[int] | None = None
        _roll_back(conn)  # if the one-trip append was refused (its transaction is left aborted)
        with conn.pipeline() as pipeline, conn.cursor() as curs, conn.cursor() as marking:
            self._begin(curs, stored_events, **kwargs)
            if stored_events:
                curs.execute(self._append_statement, self._append_params(stored_events, plan), prepare=True)
                if idempotency is not None:
                    written, params = idempotency.mark(stored_events)
                    marking.execute(self._mark_statement, params, prepare=True)
                # Sync now: a uniqueness violation raises IntegrityError here.
                pipeline.sync()
                rows = curs.fetchall()
                notification_ids = [row["notification_id"] for row in rows]
                if written is not None and not marking.fetchall():
                    raise claim_lost(idempotency)
                self._log_placed(curs, plan, notification_ids, rows[0])
            curs.execute(_COMMIT)
        # the pipeline's exit sent the COMMIT and waited for it
        if stored_events:
            self._head.committed(plan)
        return notification_ids, written

    def _append_params(self, stored_events: Sequence[StoredEvent], plan: AppendPlan,
                       commit: bool = False) -> dict[str, Any]:
        if self.datastore.originator_id_type == "uuid":
            ids: list[Any] = [i if isinstance(i := s.originator_id, UUID) else UUID(i) for s in stored_events]
        else:
            ids = [str(s.originator_id) for s in stored_events]
        levels, indexes, digests = zip(*plan.nodes) if plan.nodes else ((), (), ())
        placed = plan.placed
        return {"ids": ids, "versions": [s.originator_version for s in stored_events],
                "topics": [s.topic for s in stored_events], "states": [s.state for s in stored_events],
                "placed": placed, "top": plan.top if placed else None, "size": max(plan.size, 0),
                "hashes": plan.hashes, "levels": list(levels), "indexes": list(indexes), "digests": list(digests),
                "commit": commit}

    def _log_placed(self, curs: Any, plan: AppendPlan, notification_ids: list[int], first: Any) -> None:
        """Check the statement's leaves; if the log had another size than planned (another process
        appended, or this one has not seen the log yet), place the plan after the actual size and
        queue its nodes (they go with the commit). The events table is locked IN EXCLUSIVE MODE by
        this transaction, so the size cannot move meanwhile."""
        if first["logged"] != len(notification_ids):
            raise RuntimeError(f"{len(notification_ids)} events but {first['logged']} leaves")
        if any(a >= b for a, b in pairwise(notification_ids)):
            # the leaves are numbered in notification-id order, the plan's nodes in event order
            raise RuntimeError("notification ids out of the events' order")
        size = 0 if first["top"] is None else first["top"] + 1
        self._head.fitted = size == plan.size
        if size == plan.size:
            return  # the statement wrote the plan's nodes
        self._head.follow(plan, size, first["newer"], lambda size: self._load_frontier(curs, size))
        if plan.nodes:
            levels, indexes, digests = zip(*plan.nodes)
            curs.execute(self._insert_nodes, (list(levels), list(indexes), list(digests)), prepare=True)

    def _load_frontier(self, curs: Any, size: int) -> list[bytes]:
        """The stored right edge of a log of ``size`` leaves: its nodes and last leaves, both
        queries sent before either answer is read (one round trip)."""
        addresses = stored_edge_addresses(size)
        with curs.connection.cursor() as tail:
            curs.execute(self._edge_nodes, ([lv for lv, _ in addresses], [ix for _, ix in addresses]))
            tail.execute(self._tail_leaves, (tail_start(size), size))
            stored = {(row["level"], row["idx"]): bytes(row["hash"]) for row in curs.fetchall()}
            hashes = [bytes(row["leaf_hash"]) for row in tail.fetchall()]
        return fastpath.load_frontier(size, lambda level, index: stored[(level, index)], hashes)
