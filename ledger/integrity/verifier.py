"""Full-log verification, as an auditor runs it: replay every leaf, check every signed checkpoint.

Input is what the database says, which is exactly what is under suspicion: for each leaf, in leaf
order, the stored leaf hash and the event's canonical leaf bytes (``leaf.encode_leaf`` of the
stored event). Checkpoints must already have been opened with the log's public key
(``checkpoint.open_note``); they are the only trusted input.

The replay recomputes everything from the event bytes alone:
1. leaf indexes run 0, 1, 2, ... with no gap or repeat (no event removed or duplicated);
2. every leaf's bytes are a well-formed leaf, and hash to the stored leaf hash;
3. the tree rebuilt from those hashes has, at each checkpoint's size, that checkpoint's root, so
   events cannot have been altered, removed, inserted or reordered and re-hashed consistently
   since the checkpoint was signed;
4. the log is not shorter than any checkpoint (no events cut off the end);
5. when the stored interior nodes are given: each one the rebuilt tree has (levels STORED_LEVEL
   and up) is stored with exactly the rebuilt hash, and none lies beyond the log's end — proofs
   are served from them, so a forged node would make proofs lie.
It stops at the first problem and names the leaf, the event's log position and a label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, NamedTuple, Protocol, Sequence

from ledger.integrity.checkpoint import Checkpoint
from ledger.integrity.leaf import decode_leaf
from ledger.integrity.merkle import EMPTY_ROOT, STORED_LEVEL, Frontier, leaf_hash, verify_inclusion

PROGRESS_EVERY = 1000  # leaves between progress callbacks


@dataclass(frozen=True)
class LeafRecord:
    leaf_index: int
    stored_leaf_hash: bytes
    leaf_bytes: bytes | None  # None: the leaf row exists but its event was not found
    position: int  # the event's position in the application log (notification id)
    label: str  # for humans, e.g. "ticket 3f2a… v3"


class Problem(NamedTuple):
    leaf_index: int
    position: int | None  # None when no event record is involved (e.g. the log ends too early)
    label: str | None
    description: str


@dataclass(frozen=True)
class VerificationReport:
    ok: bool
    leaves: int  # leaves verified before stopping (all of them when ok)
    first_problem: Problem | None
    checkpoints_checked: int


def _check_record(record: LeafRecord, expected_index: int) -> str | None:
    """What is wrong with this record at this point of the replay, or None."""
    if isinstance(record.leaf_index, bool) or not isinstance(record.leaf_index, int):
        return f"leaf index {record.leaf_index!r} is not an integer"
    if record.leaf_index < expected_index:
        return f"leaf index {record.leaf_index} appears again after leaf {expected_index - 1}"
    if record.leaf_index > expected_index:
        return f"expected leaf {expected_index}, found leaf {record.leaf_index}: leaves missing or out of order"
    if record.leaf_bytes is None:
        return "the event for this leaf is missing"
    try:
        decode_leaf(record.leaf_bytes)
    except ValueError as exc:
        return f"event bytes are not a well-formed leaf: {exc}"
    if leaf_hash(bytes(record.leaf_bytes)) != bytes(record.stored_leaf_hash):
        return "the event's bytes do not hash to the stored leaf hash (event or hash altered)"
    return None


class StoredNodes(Protocol):
    """The interior nodes the database stores (levels STORED_LEVEL and up), as the replay asks for them."""

    def get(self, level: int, index: int) -> bytes | None:
        """The stored hash of node (level, index), or None when there is none."""

    def beyond(self, size: int) -> tuple[int, int] | None:
        """A stored node (level, index) that is not part of a tree of ``size`` leaves, if any."""


class NodeMap(dict):
    """StoredNodes over a plain dict {(level, index): hash}."""

    def get(self, level: int, index: int) -> bytes | None:  # type: ignore[override]
        return dict.get(self, (level, index))

    def beyond(self, size: int) -> tuple[int, int] | None:
        outside = [(l, i) for l, i in self if l >= STORED_LEVEL and (i + 1) << l > size]
        return min(outside, key=lambda node: ((node[1] + 1) << node[0], node[0]), default=None)


class LogReplay:
    """The replay, one record at a time (``verify_log`` drives it from the first leaf; a faster
    driver may hand it the state after some verified prefix of the log)."""

    def __init__(self, checkpoints: Sequence[Checkpoint], stored_nodes: StoredNodes | None = None, *,
                 frontier: Frontier | None = None, checked: int = 0):
        self.pending = sorted(checkpoints, key=lambda c: c.size)  # those not yet checked
        self.next_cp = 0
        self.checked = checked
        self.frontier = frontier or Frontier()
        self.stored_nodes = stored_nodes

    def start(self) -> Problem | None:
        """Checkpoints of the empty tree come before any leaf."""
        while self.next_cp < len(self.pending) and self.pending[self.next_cp].size == 0:
            if self.pending[self.next_cp].root != EMPTY_ROOT:
                return Problem(0, None, None, "checkpoint at tree size 0 does not have the empty root")
            self.next_cp, self.checked = self.next_cp + 1, self.checked + 1
        return None

    def add(self, record: LeafRecord) -> Problem | None:
        index = self.frontier.size
        problem = _check_record(record, index)
        if problem is not None:
            # A gap is reported at the first missing index, a repeat at the repeated one.
            where = min(index, record.leaf_index) if isinstance(record.leaf_index, int) else index
            return Problem(where, record.position, record.label, problem)
        created = self.frontier.append(bytes(record.stored_leaf_hash))
        if self.stored_nodes is not None:
            for level, node_index, digest in created:
                problem = self._check_node(level, node_index, digest)
                if problem is not None:
                    return Problem(index, record.position, record.label, problem)
        # Every checkpoint signed at this size must have exactly the root we just rebuilt.
        while self.next_cp < len(self.pending) and self.pending[self.next_cp].size == self.frontier.size:
            cp = self.pending[self.next_cp]
            if cp.root != self.frontier.root():
                return Problem(
                    index, record.position, record.label,
                    f"checkpoint at tree size {cp.size} ({cp.time.isoformat()}) has root "
                    f"{cp.root.hex()}, but the stored events give {self.frontier.root().hex()}: the log "
                    f"up to here was changed after it was signed")
            self.next_cp, self.checked = self.next_cp + 1, self.checked + 1
        return None

    def _check_node(self, level: int, index: int, digest: bytes) -> str | None:
        if level < STORED_LEVEL:
            return None
        stored = self.stored_nodes.get(level, index)
        span = f"(level {level}, index {index}: leaves {index << level}..{((index + 1) << level) - 1})"
        if stored is None:
            return f"interior node {span} is not stored, so proofs that need it cannot be served"
        if bytes(stored) != digest:
            return f"stored interior node {span} differs from the one rebuilt from the events (node altered)"
        return None

    def finish(self) -> Problem | None:
        """After the last record: no checkpoint and no stored node may reach past the log's end."""
        size = self.frontier.size
        if self.next_cp < len(self.pending):
            cp = self.pending[self.next_cp]
            return Problem(size, None, None,
                           f"checkpoint at tree size {cp.size} ({cp.time.isoformat()}) covers more leaves than the "
                           f"{size} in the log: leaves {size}..{cp.size - 1} are missing")
        extra = self.stored_nodes.beyond(size) if self.stored_nodes is not None else None
        if extra is not None:
            level, index = extra
            return Problem(size, None, None, f"stored interior node (level {level}, index {index}) covers leaves "
                                             f"{index << level}..{((index + 1) << level) - 1}, beyond the "
                                             f"{size} in the log")
        return None


def verify_log(records: Iterable[LeafRecord], checkpoints: Sequence[Checkpoint],
               progress: Callable[[int], None] | None = None,
               stored_nodes: StoredNodes | None = None) -> VerificationReport:
    """Replay the log in leaf order against the (already signature-checked) checkpoints and, when
    given, against the stored interior nodes."""
    replay = LogReplay(checkpoints, stored_nodes)

    def report(problem: Problem | None) -> VerificationReport:
        if progress is not None:
            progress(replay.frontier.size)
        return VerificationReport(problem is None, replay.frontier.size, problem, replay.checked)

    problem = replay.start()
    if problem is not None:
        return report(problem)
    for record in records:
        problem = replay.add(record)
        if problem is not None:
            return report(problem)
        if progress is not None and replay.frontier.size % PROGRESS_EVERY == 0:
            progress(replay.frontier.size)
    return report(replay.finish())


def verify_bundle_entry(leaf_bytes: bytes, leaf_index: int, proof: Sequence[bytes], checkpoint: Checkpoint) -> bool:
    """Is this exported event the leaf at ``leaf_index`` of the tree the checkpoint signed?

    Offline check for one exported event: hash its canonical leaf bytes and verify the RFC 9162
    inclusion proof against the checkpoint's root. The checkpoint itself must have been opened
    with the log's public key (``checkpoint.open_note``). Never raises on malformed input.
    """
    if not isinstance(leaf_bytes, (bytes, bytearray)) or not isinstance(checkpoint, Checkpoint):
        return False
    return verify_inclusion(leaf_hash(bytes(leaf_bytes)), leaf_index, checkpoint.size, proof, checkpoint.root)
