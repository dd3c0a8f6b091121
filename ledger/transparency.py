"""The transparency log as stored in the database: checkpoints, proofs and full verification.

The tree itself is written by ``ledger.recorders`` in each event's transaction; this module reads
it. The hashing, proof and checking rules are the pure ``ledger.integrity`` modules — nothing here
decides whether something verifies, it only fetches rows for them (``ledger.logscan`` reads the
whole log for verification).
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from typing import Any, Callable, Iterator, Sequence
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.postgres import PostgresApplicationRecorder

from ledger.checkpoint_files import CheckpointArchive

from ledger.integrity import merkle
from ledger.integrity.checkpoint import Checkpoint, CheckpointError, generate_key, public_key_to_text, sign
from ledger.integrity.fastpath import tree_levels
from ledger.integrity.leaf import encode_leaf
from ledger.integrity.trust import TrustSet
from ledger.integrity.verifier import VerificationReport
from ledger.keys import LogKeys
from ledger.sqlaccess import SqlAccess, as_tuples


class LogError(Exception):
    """A proof or checkpoint was asked for something the log does not have."""


class TransparencyLog:
    def __init__(self, application: Any, keys: LogKeys, archive: CheckpointArchive | None = None):
        # Hold the application, not just its recorder: an eventsourcing Application closes its
        # connection pool when it is garbage-collected.
        self.application = application
        self.recorder = recorder = application.recorder
        self.keys = keys
        self.archive = archive  # where published checkpoints are also written, outside the database
        pg = isinstance(recorder, PostgresApplicationRecorder)
        events = f'"{recorder.events_table_name}"' if pg else recorder.events_table_name
        self.access = SqlAccess(recorder, {"leaves": "merkle_leaves", "nodes": "merkle_nodes",
                                           "checkpoints": "merkle_checkpoints", "events": events},
                                names={"nid": "notification_id" if pg else "rowid"})
        self.pg, self.tables = self.access.pg, self.access.tables

    # -- low-level access -------------------------------------------------------------------
    @contextmanager
    def cursor(self, *, commit: bool = False) -> Iterator[Any]:
        """A raw cursor on the ledger's database (tuples on SQLite, dicts on PostgreSQL)."""
        if self.pg:
            with self.recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
                yield cursor  # eventsourcing's PostgreSQL connections autocommit
        else:
            with self.recorder.datastore.transaction(commit=commit) as cursor:
                yield cursor

    def sql(self, sql: str) -> str:
        """``sql`` with table names filled in and placeholders in the driver's style."""
        return self.access.render(sql)

    def rows(self, sql: str, params: tuple | list = (), *, commit: bool = False) -> list[tuple]:
        sql = self.sql(sql)
        with self.cursor(commit=commit) as c:
            c.execute(sql, params)
            if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
                return []
            return as_tuples(c.fetchall())

    def size(self) -> int:
        top = self.rows("SELECT MAX(leaf_index) FROM {leaves}")[0][0]
        return 0 if top is None else top + 1

    def get_node(self, level: int, index: int) -> bytes:
        """Hash of the perfect subtree (level, index), stored or rebuilt from its leaves."""
        return NodeReader(self)(level, index)

    def _computed(self, compute: Callable[[merkle.GetNode], Any]) -> Any:
        """Run a pure merkle computation with every node it needs read in one query: a first run
        on placeholder hashes only records which nodes it asks for."""
        wanted: list[tuple[int, int]] = []
        compute(lambda level, index: wanted.append((level, index)) or bytes(merkle.HASH_SIZE))
        reader = NodeReader(self)
        reader.load(wanted)
        return compute(reader)

    def root(self, size: int | None = None) -> bytes:
        size = self.size() if size is None else size
        return self._computed(lambda get_node: merkle.root(size, get_node))

    # -- checkpoints ------------------------------------------------------------------------
    def publish_checkpoint(self, now: datetime, *, next_key: Ed25519PrivateKey | None = None) -> tuple[Checkpoint, str]:
        """Sign the current tree head and keep it (checkpoint history is append-only), in the database
        and in the archive folder. With ``next_key``: a rotation checkpoint announcing that key, signed
        by the current key and by the next one."""
        key, origin = self.keys.signing_key(), self.keys.origin
        size = self.size()
        announced = public_key_to_text(next_key.public_key(), origin) if next_key is not None else None
        checkpoint = Checkpoint(origin, size, self.root(size), now, announced)
        note = sign(checkpoint, key, origin)
        if next_key is not None:
            note = note + sign(checkpoint, next_key, origin).rpartition("\n\n")[2]
        self.rows("INSERT INTO {checkpoints} (tree_size, root, created_at, note) VALUES (?, ?, ?, ?)",
                  (size, checkpoint.root, checkpoint.time.isoformat(), note), commit=True)
        if self.archive is not None:
            self.archive.write(checkpoint, note)
        return checkpoint, note

    def rotate_key(self, now: datetime) -> tuple[Checkpoint, str]:
        """Replace the signing key: the new key is announced in a checkpoint the old key signs, then
        installed. Old checkpoints keep verifying with the old key (kept as retired)."""
        next_key = generate_key()
        checkpoint, note = self.publish_checkpoint(now, next_key=next_key)
        self.keys.install_next(next_key)
        return checkpoint, note

    def attach_cosigned(self, note: str) -> Checkpoint:
        """Keep a copy of a published checkpoint that now also carries cosignatures: the same signed
        text (which must already be stored), more signature lines. History stays append-only."""
        checkpoint, _ = self.keys.trusted().open_checkpoint(note)
        text = note.rpartition("\n\n")[0] + "\n"
        if not any(stored.startswith(text + "\n") for stored in self.checkpoint_notes()):
            raise LogError(f"this log never published the checkpoint of tree size {checkpoint.size} being attached")
        self.rows("INSERT INTO {checkpoints} (tree_size, root, created_at, note) VALUES (?, ?, ?, ?)",
                  (checkpoint.size, checkpoint.root, checkpoint.time.isoformat(), note), commit=True)
        if self.archive is not None:
            self.archive.write(checkpoint, note)
        return checkpoint

    def checkpoint_notes(self) -> list[str]:
        return [row[0] for row in self.rows("SELECT note FROM {checkpoints} ORDER BY id")]

    def latest_note(self) -> str | None:
        notes = self.rows("SELECT note FROM {checkpoints} ORDER BY id DESC LIMIT 1")
        return notes[0][0] if notes else None

    def open_checkpoints(self, trust: TrustSet | None = None) -> list[Checkpoint]:
        """Every retained checkpoint, each with its signature checked against a trusted key: those
        of ``trust`` (pinned by the caller), else this installation's key files; rotations followed."""
        trust = self.keys.trusted() if trust is None else trust
        return trust.open_chain(self.checkpoint_notes())

    # -- proofs -----------------------------------------------------------------------------
    def leaf_of(self, aggregate_id: UUID, version: int) -> tuple[int, int, bytes]:
        """(leaf index, log position, leaf bytes) of one stored event."""
        oid = str(aggregate_id) if self.pg else UUID(str(aggregate_id)).hex
        rows = self.rows("SELECT e.{nid}, e.originator_id, e.originator_version, e.topic, e.state FROM {events} e "
                         "WHERE e.originator_id = ? AND e.originator_version = ?", (oid, version))
        index = self._leaf_at(rows[0][0]) if rows else None
        if index is None:
            raise LogError(f"no logged event {aggregate_id} v{version}")
        position, originator, stored_version, topic, state = rows[0]
        return index, position, encode_leaf(UUID(str(originator)), stored_version, topic, bytes(state))

    def _leaf_at(self, position: int) -> int | None:
        """The index of the leaf of the event at log ``position``. PostgreSQL indexes the leaves by
        position; SQLite does not (one B-tree less per commit), and finds it by the leaf's rowid —
        event rowids count from 1 and every event has the next leaf, so leaf = position - 1 — or,
        if that does not hold, by bisection (positions grow with leaf indexes)."""
        find = "SELECT leaf_index FROM {leaves} WHERE notification_id = ?"
        if self.pg:
            rows = self.rows(find, (position,))
            return rows[0][0] if rows else None
        if self.rows(find + " AND leaf_index = ?", (position, position - 1)):
            return position - 1
        low, high = 0, self.size() - 1
        while low <= high:
            middle = (low + high) // 2
            found = self.rows("SELECT notification_id FROM {leaves} WHERE leaf_index = ?", (middle,))[0][0]
            if found == position:
                return middle
            low, high = (middle + 1, high) if found < position else (low, middle - 1)
        return None

    def inclusion_proof(self, leaf_index: int, tree_size: int | None = None) -> list[bytes]:
        tree_size = self.size() if tree_size is None else tree_size
        if not 0 <= leaf_index < tree_size <= self.size():
            raise LogError(f"leaf {leaf_index} is not in a tree of size {tree_size} (log size {self.size()})")
        return self._computed(lambda get_node: merkle.inclusion_proof(leaf_index, tree_size, get_node))

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        if not 0 <= old_size <= new_size <= self.size():
            raise LogError(f"need 0 <= old ({old_size}) <= new ({new_size}) <= log size ({self.size()})")
        return self._computed(lambda get_node: merkle.consistency_proof(old_size, new_size, get_node))

    # -- verification -----------------------------------------------------------------------
    def verify(self, progress: Callable[[int], None] | None = None, *, reference: bool = False,
               trust: TrustSet | None = None, external: Sequence[Checkpoint] = ()) -> VerificationReport:
        """Recompute the whole log from the stored events; check every retained checkpoint and every
        stored interior node. ``reference=True`` replays leaf by leaf with the auditor-readable
        ``verifier.verify_log`` only (slow); the default reads, hashes and checks a page at a time
        (``ledger.logscan``, in C when the extension is built, pages read ahead by three threads) and
        hands any page where something differs to that same code, so both report the same first
        problem.

        ``external`` checkpoints (already opened with a trusted key, e.g. from files kept outside the
        database) are checked like the stored ones: the stored events must reproduce their roots, and
        the log must not be shorter than any of them.

        A checkpoint whose signature does not verify is itself a failure (CheckpointError)."""
        from ledger.logscan import LogScan

        checkpoints = sorted([*self.open_checkpoints(trust), *external], key=lambda c: c.size)
        scan = LogScan(self)
        try:
            if reference:
                return scan.verify_reference(checkpoints, progress)
            return scan.verify(checkpoints, progress)
        finally:
            scan.close()


class NodeReader:
    """``get_node`` for the pure merkle code: stored nodes (level ≥ STORED_LEVEL) are read; a
    lower node is rebuilt from its block of 2**STORED_LEVEL leaf hashes, read once per proof."""

    def __init__(self, log: TransparencyLog):
        self.log = log
        self.stored: dict[tuple[int, int], bytes] = {}
        self.blocks: dict[int, list[list[bytes]]] = {}

    def load(self, addresses: list[tuple[int, int]]) -> None:
        """Read the given nodes (and the leaf blocks of the lower ones) in one query."""
        nodes = sorted({a for a in addresses if a[0] >= merkle.STORED_LEVEL})
        blocks = sorted({(index << level) >> merkle.STORED_LEVEL for level, index in addresses
                         if level < merkle.STORED_LEVEL} - set(self.blocks))
        parts, params = [], []
        if nodes:
            parts.append("SELECT level, idx, hash FROM {nodes} WHERE " + " OR ".join(["(level = ? AND idx = ?)"] * len(nodes)))
            params += [v for node in nodes for v in node]
        if blocks:
            parts.append("SELECT -1, leaf_index, leaf_hash FROM {leaves} WHERE "
                         + " OR ".join(["(leaf_index >= ? AND leaf_index < ?)"] * len(blocks)))
            params += [v for b in blocks for v in (b << merkle.STORED_LEVEL, (b + 1) << merkle.STORED_LEVEL)]
        leaves: dict[int, list[tuple[int, bytes]]] = {b: [] for b in blocks}
        for level, index, digest in (self.log.rows(" UNION ALL ".join(parts), params) if parts else []):
            if level >= 0:
                self.stored[(level, index)] = bytes(digest)
            else:
                leaves[index >> merkle.STORED_LEVEL].append((index, bytes(digest)))
        for block, rows in leaves.items():
            self._keep_block(block, rows)

    def _keep_block(self, block: int, rows: list[tuple[int, bytes]]) -> None:
        start = block << merkle.STORED_LEVEL
        hashes = []
        for position, (leaf, digest) in enumerate(sorted(rows)):
            if leaf != start + position:
                break
            hashes.append(digest)
        self.blocks[block] = tree_levels(hashes) if hashes else [[]]

    def __call__(self, level: int, index: int) -> bytes:
        if level >= merkle.STORED_LEVEL:
            if (level, index) not in self.stored:
                rows = self.log.rows("SELECT hash FROM {nodes} WHERE level = ? AND idx = ?", (level, index))
                if not rows:
                    raise LogError(f"the log has no node ({level}, {index})")
                self.stored[(level, index)] = bytes(rows[0][0])
            return self.stored[(level, index)]
        first_leaf = index << level
        block = first_leaf >> merkle.STORED_LEVEL
        if block not in self.blocks:
            start = block << merkle.STORED_LEVEL
            self._keep_block(block, [(leaf, bytes(digest)) for leaf, digest in self.log.rows(
                "SELECT leaf_index, leaf_hash FROM {leaves} WHERE leaf_index >= ? AND leaf_index < ?",
                (start, start + (1 << merkle.STORED_LEVEL)))])
        levels = self.blocks[block]
        offset = (first_leaf - (block << merkle.STORED_LEVEL)) >> level
        if level >= len(levels) or offset >= len(levels[level]):
            raise LogError(f"the log has no node ({level}, {index})")
        return levels[level][offset]


__all__ = ["LogError", "NodeReader", "TransparencyLog", "CheckpointError"]
