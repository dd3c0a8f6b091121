"""Planning an append to the transparency log before the write lock is taken (used by ``ledger.recorders``).

A batch of events becomes a batch of leaf hashes, and — if this process knows the log's head
(size and right edge, as of its last commit) — the interior nodes they complete and the new
right edge. The recorders use such a plan under the write lock only if the log still has the
size it was made for, and re-place it after the actual size otherwise; so the hashing and the
tree arithmetic stay out of the critical section, and a stale cache costs time, never
correctness (the log is append-only: same size, same tree).

The nodes are computed a perfect block at a time (``fastpath.tree_levels``, in C when the
extension is built) instead of a leaf at a time: the same nodes and right edge as
``fastpath.extend``, which ``tests/integrity/test_log_append.py`` checks.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Callable, Sequence
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from ledger.idempotency import Claim, ClaimLost
from ledger.integrity import fastpath
from ledger.integrity.merkle import STORED_LEVEL, frontier_addresses

_sha256 = hashlib.sha256


def event_leaf_hashes(stored_events: Sequence[StoredEvent]) -> list[bytes]:
    """``leaf_hash(encode_leaf(...))`` of each stored event (see ``ledger.integrity.leaf``)."""
    return fastpath.leaf_hashes([(_id_bytes(s.originator_id), s.originator_version, s.topic, s.state)
                                 for s in stored_events])


def _id_bytes(originator_id: UUID | str) -> bytes:
    return originator_id.bytes if isinstance(originator_id, UUID) else UUID(str(originator_id)).bytes


def extend_by_blocks(size: int, frontier: list[bytes], hashes: Sequence[bytes],
                     min_level: int = STORED_LEVEL) -> tuple[list[bytes], list[tuple[int, int, bytes]]]:
    """``fastpath.extend`` (same arguments and results, nodes possibly in another order), over
    the largest aligned perfect blocks the new leaves make: each block's subtree is built at once,
    then its root joins the right edge as ``extend`` joins a leaf."""
    frontier = list(frontier)
    nodes: list[tuple[int, int, bytes]] = []
    done = 0
    while done < len(hashes):
        alignment = (size & -size).bit_length() - 1 if size else 64
        height = min(alignment, (len(hashes) - done).bit_length() - 1)
        block = hashes[done:done + (1 << height)]
        levels = fastpath.tree_levels(block) if height else [block]
        for level in range(max(min_level, 1), height + 1):
            first = size >> level
            nodes += [(level, first + j, digest) for j, digest in enumerate(levels[level])]
        level, acc = height, levels[height][0]
        while size >> level & 1:  # a complete subtree of this level sits to the block's left
            acc = _sha256(b"\x01" + frontier.pop() + acc).digest()
            level += 1
            if level >= min_level:
                nodes.append((level, size >> level, acc))
        frontier.append(acc)
        size += 1 << height
        done += 1 << height
    return frontier, nodes


def _extend(size: int, frontier: list[bytes], hashes: Sequence[bytes]) -> tuple[list[bytes], list]:
    # a leaf at a time is quicker for a few leaves (measured: the same at 16)
    return (fastpath.extend if len(hashes) < 1 << STORED_LEVEL else extend_by_blocks)(size, frontier, hashes)


def tail_start(size: int) -> int:
    return size - size % (1 << STORED_LEVEL)


def stored_edge_addresses(size: int) -> list[tuple[int, int]]:
    return frontier_addresses(tail_start(size))


def claim_lost(claim: Claim) -> ClaimLost:
    return ClaimLost(f"the Idempotency-Key {claim.key!r} was taken over by a retry (this request ran past its "
                     "lease); nothing of this request was written")


class AppendPlan:
    """The log rows for a batch of events: placed after a log of ``size`` leaves (-1: not yet
    placed), giving the right edge ``frontier`` after the batch and the new stored ``nodes``."""

    def __init__(self, hashes: list[bytes]):
        self.hashes = hashes
        self.size, self.frontier, self.nodes = -1, [], []
        self.base: list[bytes] = []  # the right edge of the log it is placed after

    def place(self, size: int, frontier: list[bytes]) -> None:
        """Place the batch after a log of ``size`` leaves with right edge ``frontier``."""
        self.frontier, self.nodes = _extend(size, frontier, self.hashes)
        self.size, self.base = size, frontier

    @property
    def placed(self) -> bool:
        return self.size >= 0

    @property
    def top(self) -> int | None:
        """The largest leaf index the log must have for this plan to fit (None: an empty log)."""
        if not self.placed:
            raise ValueError("the plan is not placed")
        return None if self.size == 0 else self.size - 1

    def leaf_rows(self, notification_ids: Sequence[int]) -> list[tuple[int, int, bytes]]:
        """(leaf index, notification id, leaf hash) of each event, given their notification ids."""
        if len(notification_ids) != len(self.hashes):
            raise RuntimeError(f"{len(self.hashes)} events but {len(notification_ids)} notification ids")
        return list(zip(range(self.size, self.size + len(self.hashes)), notification_ids, self.hashes))


class LogHead:
    """The log's size and right edge as of this process's last commit (a cache, never trusted
    without checking the size under the write lock: the log is append-only, so same size means
    same tree)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._size, self._frontier = -1, []
        #: whether this process's last append found the log where its plan was placed (a hint only:
        #: PostgreSQL's one-round-trip append is tried while plans fit, see ``ledger.pg_append``)
        self.fitted = True

    def _known(self, size: int | None = None) -> tuple[int, list[bytes]] | None:
        with self._lock:
            if self._size < 0 or size not in (None, self._size):
                return None
            return self._size, self._frontier  # replaced on commit, never changed in place

    def plan(self, stored_events: Sequence[StoredEvent]) -> AppendPlan:
        """Hash the events and, if this process knows the log's head, place them after it."""
        plan = AppendPlan(event_leaf_hashes(stored_events))
        known = self._known()
        if known is not None:
            plan.place(*known)
        return plan

    def place(self, plan: AppendPlan, size: int, load_frontier: Callable[[int], list[bytes]]) -> None:
        """Place ``plan`` after the log's actual ``size`` (read under the write lock), unless it
        is there already; the right edge is read from the database only if not cached for that size."""
        if plan.size != size:
            known = (0, []) if size == 0 else self._known(size)  # an empty log has no right edge to read
            plan.place(size, load_frontier(size) if known is None else known[1])

    def follow(self, plan: AppendPlan, size: int, newer: Sequence[bytes] | None,
               load_frontier: Callable[[int], list[bytes]] | None = None) -> bool:
        """Like ``place``, given also the hashes of the leaves other processes appended after the
        plan's size (``newer``, read under the write lock; None if not read): the plan's right edge
        is carried over them, no read of the database needed (their nodes are stored already).
        Without ``load_frontier``: False if the right edge would have to be read (plan unchanged)."""
        if plan.size == size:
            return True
        known = (0, []) if size == 0 else self._known(size)
        if known is not None:
            plan.place(size, known[1])
        elif newer is not None and plan.placed and len(newer) == size - plan.size:
            plan.place(size, _extend(plan.size, plan.base, newer)[0])
        elif load_frontier is None:
            return False
        else:
            plan.place(size, load_frontier(size))
        return True

    def forget(self) -> None:
        """This process no longer knows where the log ends (its next append reads the right edge)."""
        with self._lock:
            self._size, self._frontier = -1, []

    def committed(self, plan: AppendPlan) -> None:
        """The plan's rows were committed: the log now ends where the plan ends."""
        with self._lock:
            self._size, self._frontier = plan.size + len(plan.hashes), plan.frontier
