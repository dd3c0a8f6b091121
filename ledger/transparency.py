"""The transparency log as stored in the database: checkpoints, proofs and full verification.

The tree itself is written by ``ledger.recorders`` in each event's transaction; this module reads
it. The hashing, proof and checking rules are the pure ``ledger.integrity`` modules — nothing here
decides whether something verifies, it only fetches rows for them.
"""

from __future__ import annotations

import dataclasses
import heapq
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Callable, Iterator
from uuid import UUID

from eventsourcing.postgres import PostgresApplicationRecorder

from ledger.integrity import merkle
from ledger.integrity.checkpoint import Checkpoint, CheckpointError, open_note, sign
from ledger.integrity.leaf import encode_leaf
from ledger.integrity.verifier import LeafRecord, Problem, VerificationReport, verify_log
from ledger.keys import LogKeys

PAGE = 5000


class LogError(Exception):
    """A proof or checkpoint was asked for something the log does not have."""


class TransparencyLog:
    def __init__(self, application: Any, keys: LogKeys):
        # Hold the application, not just its recorder: an eventsourcing Application closes its
        # connection pool when it is garbage-collected.
        self.application = application
        self.recorder = recorder = application.recorder
        self.keys = keys
        self.pg = isinstance(recorder, PostgresApplicationRecorder)
        if self.pg:
            schema = f'"{recorder.datastore.schema}"'
            self.tables = {"leaves": f"{schema}.merkle_leaves", "nodes": f"{schema}.merkle_nodes",
                           "checkpoints": f"{schema}.merkle_checkpoints",
                           "events": f'{schema}."{recorder.events_table_name}"', "nid": "notification_id"}
        else:
            self.tables = {"leaves": "merkle_leaves", "nodes": "merkle_nodes", "checkpoints": "merkle_checkpoints",
                           "events": recorder.events_table_name, "nid": "rowid"}

    # -- low-level access -------------------------------------------------------------------
    @contextmanager
    def _cursor(self, *, commit: bool = False) -> Iterator[Any]:
        if self.pg:
            with self.recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
                yield cursor  # eventsourcing's PostgreSQL connections autocommit
        else:
            with self.recorder.datastore.transaction(commit=commit) as cursor:
                yield cursor

    def _rows(self, sql: str, params: tuple = (), *, commit: bool = False) -> list[tuple]:
        sql = sql.format(**self.tables)
        if self.pg:
            sql = sql.replace("?", "%s")
        with self._cursor(commit=commit) as c:
            c.execute(sql, params)
            if not sql.lstrip().upper().startswith("SELECT"):
                return []
            return [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in c.fetchall()]

    def size(self) -> int:
        top = self._rows("SELECT MAX(leaf_index) FROM {leaves}")[0][0]
        return 0 if top is None else top + 1

    def get_node(self, level: int, index: int) -> bytes:
        if level == 0:
            rows = self._rows("SELECT leaf_hash FROM {leaves} WHERE leaf_index = ?", (index,))
        else:
            rows = self._rows("SELECT hash FROM {nodes} WHERE level = ? AND idx = ?", (level, index))
        if not rows:
            raise LogError(f"the log has no node ({level}, {index})")
        return bytes(rows[0][0])

    def root(self, size: int | None = None) -> bytes:
        return merkle.root(self.size() if size is None else size, self.get_node)

    # -- checkpoints ------------------------------------------------------------------------
    def publish_checkpoint(self, now: datetime) -> tuple[Checkpoint, str]:
        """Sign the current tree head and keep it (checkpoint history is append-only)."""
        size = self.size()
        checkpoint = Checkpoint(self.keys.origin, size, self.root(size), now)
        note = sign(checkpoint, self.keys.signing_key(), self.keys.origin)
        self._rows("INSERT INTO {checkpoints} (tree_size, root, created_at, note) VALUES (?, ?, ?, ?)",
                   (size, checkpoint.root, checkpoint.time.isoformat(), note), commit=True)
        return checkpoint, note

    def checkpoint_notes(self) -> list[str]:
        return [row[0] for row in self._rows("SELECT note FROM {checkpoints} ORDER BY id")]

    def latest_note(self) -> str | None:
        notes = self._rows("SELECT note FROM {checkpoints} ORDER BY id DESC LIMIT 1")
        return notes[0][0] if notes else None

    def open_checkpoints(self) -> list[Checkpoint]:
        """Every retained checkpoint, each with its signature checked against the verifier key."""
        name, public_key = self.keys.public_key()
        return [open_note(note, public_key, name) for note in self.checkpoint_notes()]

    # -- proofs -----------------------------------------------------------------------------
    def leaf_of(self, aggregate_id: UUID, version: int) -> tuple[int, int, bytes]:
        """(leaf index, log position, leaf bytes) of one stored event."""
        oid = str(aggregate_id) if self.pg else UUID(str(aggregate_id)).hex
        rows = self._rows("SELECT l.leaf_index, l.notification_id, e.originator_id, e.originator_version, e.topic, "
                          "e.state FROM {events} e JOIN {leaves} l ON l.notification_id = e.{nid} "
                          "WHERE e.originator_id = ? AND e.originator_version = ?", (oid, version))
        if not rows:
            raise LogError(f"no logged event {aggregate_id} v{version}")
        index, position, originator, stored_version, topic, state = rows[0]
        return index, position, encode_leaf(UUID(str(originator)), stored_version, topic, bytes(state))

    def inclusion_proof(self, leaf_index: int, tree_size: int | None = None) -> list[bytes]:
        tree_size = self.size() if tree_size is None else tree_size
        if not 0 <= leaf_index < tree_size <= self.size():
            raise LogError(f"leaf {leaf_index} is not in a tree of size {tree_size} (log size {self.size()})")
        return merkle.inclusion_proof(leaf_index, tree_size, self.get_node)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        if not 0 <= old_size <= new_size <= self.size():
            raise LogError(f"need 0 <= old ({old_size}) <= new ({new_size}) <= log size ({self.size()})")
        return merkle.consistency_proof(old_size, new_size, self.get_node)

    # -- verification -----------------------------------------------------------------------
    def leaf_records(self) -> Iterator[LeafRecord]:
        """Every leaf with the event it should hash, in log order; events that have no leaf are
        merged in at their log position (as leaf index -1) so that the verifier reports them."""
        return heapq.merge(self._leaves_with_events(), self._events_without_leaves(), key=lambda r: r.position)

    def _leaves_with_events(self) -> Iterator[LeafRecord]:
        after = -1
        while True:
            rows = self._rows("SELECT l.leaf_index, l.leaf_hash, l.notification_id, e.originator_id, "
                              "e.originator_version, e.topic, e.state FROM {leaves} l LEFT JOIN {events} e "
                              "ON e.{nid} = l.notification_id WHERE l.leaf_index > ? ORDER BY l.leaf_index LIMIT ?",
                              (after, PAGE))
            for index, digest, position, originator, version, topic, state in rows:
                leaf_bytes = None if originator is None else encode_leaf(UUID(str(originator)), version, topic, bytes(state))
                label = f"{topic.rsplit(':', 1)[-1]} {originator} v{version}" if originator else "missing event"
                yield LeafRecord(index, bytes(digest), leaf_bytes, position, label)
            if len(rows) < PAGE:
                return
            after = rows[-1][0]

    def _events_without_leaves(self) -> Iterator[LeafRecord]:
        rows = self._rows("SELECT e.{nid}, e.originator_id, e.originator_version, e.topic, e.state FROM {events} e "
                          "WHERE NOT EXISTS (SELECT 1 FROM {leaves} l WHERE l.notification_id = e.{nid}) "
                          "ORDER BY e.{nid}")
        for position, originator, version, topic, state in rows:
            leaf_bytes = encode_leaf(UUID(str(originator)), version, topic, bytes(state))
            yield LeafRecord(-1, b"", leaf_bytes, position, f"{topic.rsplit(':', 1)[-1]} {originator} v{version} (no leaf)")

    def verify(self, progress: Callable[[int], None] | None = None) -> VerificationReport:
        """Recompute the whole log from the stored events and check every retained checkpoint.

        A checkpoint whose signature does not verify is itself a failure (CheckpointError)."""
        checkpoints = sorted(self.open_checkpoints(), key=lambda c: c.size)
        report = verify_log(self.leaf_records(), checkpoints, progress=progress)
        problem = report.first_problem
        if problem is not None and problem.leaf_index == -1:  # an event that was never logged
            problem = Problem(report.leaves, problem.position, problem.label,
                              f"the event at log position {problem.position} has no leaf: it was written "
                              "outside the ledger")
            report = dataclasses.replace(report, first_problem=problem)
        return report


__all__ = ["LogError", "TransparencyLog", "CheckpointError"]
