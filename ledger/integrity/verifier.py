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
4. the log is not shorter than any checkpoint (no events cut off the end).
It stops at the first problem and names the leaf, the event's log position and a label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, NamedTuple, Sequence

from ledger.integrity.checkpoint import Checkpoint
from ledger.integrity.leaf import decode_leaf
from ledger.integrity.merkle import EMPTY_ROOT, Frontier, leaf_hash, verify_inclusion

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


def verify_log(records: Iterable[LeafRecord], checkpoints: Sequence[Checkpoint],
               progress: Callable[[int], None] | None = None) -> VerificationReport:
    """Replay the log in leaf order against the (already signature-checked) checkpoints."""
    pending = sorted(checkpoints, key=lambda c: c.size)
    next_cp = 0
    checked = 0
    frontier = Frontier()

    def report(problem: Problem | None) -> VerificationReport:
        if progress is not None:
            progress(frontier.size)
        return VerificationReport(problem is None, frontier.size, problem, checked)

    # Checkpoints of the empty tree come before any leaf.
    while next_cp < len(pending) and pending[next_cp].size == 0:
        if pending[next_cp].root != EMPTY_ROOT:
            return report(Problem(0, None, None, "checkpoint at tree size 0 does not have the empty root"))
        next_cp, checked = next_cp + 1, checked + 1

    for record in records:
        index = frontier.size
        problem = _check_record(record, index)
        if problem is not None:
            # A gap is reported at the first missing index, a repeat at the repeated one.
            where = min(index, record.leaf_index) if isinstance(record.leaf_index, int) else index
            return report(Problem(where, record.position, record.label, problem))
        frontier.append(bytes(record.stored_leaf_hash))
        # Every checkpoint signed at this size must have exactly the root we just rebuilt.
        while next_cp < len(pending) and pending[next_cp].size == frontier.size:
            cp = pending[next_cp]
            if cp.root != frontier.root():
                return report(Problem(
                    index, record.position, record.label,
                    f"checkpoint at tree size {cp.size} ({cp.time.isoformat()}) has root "
                    f"{cp.root.hex()}, but the stored events give {frontier.root().hex()}: the log "
                    f"up to here was changed after it was signed"))
            next_cp, checked = next_cp + 1, checked + 1
        if progress is not None and frontier.size % PROGRESS_EVERY == 0:
            progress(frontier.size)

    if next_cp < len(pending):
        cp = pending[next_cp]
        return report(Problem(
            frontier.size, None, None,
            f"checkpoint at tree size {cp.size} ({cp.time.isoformat()}) covers more leaves than the "
            f"{frontier.size} in the log: leaves {frontier.size}..{cp.size - 1} are missing"))
    return report(None)


def verify_bundle_entry(leaf_bytes: bytes, leaf_index: int, proof: Sequence[bytes], checkpoint: Checkpoint) -> bool:
    """Is this exported event the leaf at ``leaf_index`` of the tree the checkpoint signed?

    Offline check for one exported event: hash its canonical leaf bytes and verify the RFC 9162
    inclusion proof against the checkpoint's root. The checkpoint itself must have been opened
    with the log's public key (``checkpoint.open_note``). Never raises on malformed input.
    """
    if not isinstance(leaf_bytes, (bytes, bytearray)) or not isinstance(checkpoint, Checkpoint):
        return False
    return verify_inclusion(leaf_hash(bytes(leaf_bytes)), leaf_index, checkpoint.size, proof, checkpoint.root)
