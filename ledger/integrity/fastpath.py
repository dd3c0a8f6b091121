"""Fast equivalents of the reference code, for the write path and for verifying big logs.

Nothing here defines a rule: ``leaf.encode_leaf``, ``merkle`` and ``verifier`` do, and an auditor
needs only those. This module computes the same values with less Python work per leaf — the
leaf encoding without per-field argument checks (the recorder builds it from its own stored
events), the tree a level at a time over a whole page of leaves instead of one leaf at a time —
and it never reports a problem itself: when anything in a page differs, the caller replays that
page with the reference verifier, which names the problem. ``tests/integrity/test_fastpath.py``
checks that both give the same hashes, nodes, roots and reports.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ledger.integrity.checkpoint import Checkpoint
from ledger.integrity.leaf import MAGIC
from ledger.integrity.merkle import STORED_LEVEL, _fold, frontier_addresses

_sha256 = hashlib.sha256
_LEAF_PREFIX = b"\x00" + MAGIC  # RFC 9162 leaf prefix, then the leaf bytes
_VERSION_AND_TOPIC_LENGTH = struct.Struct(">QI").pack
_LENGTH = struct.Struct(">I").pack


class _TopicLengths(dict):
    """topic -> (len(topic bytes), topic bytes); a log has a few dozen topics, so encode each once."""

    def __missing__(self, topic: str) -> tuple[int, bytes]:
        encoded = topic.encode("utf-8")  # strict, as encode_leaf: lone surrogates raise
        self[topic] = value = (len(encoded), encoded)
        return value


_topics = _TopicLengths()


def leaf_hashes_python(events: Iterable[tuple[bytes, int, str, bytes]]) -> list[bytes]:
    """RFC 9162 leaf hashes of (originator id as 16 bytes, version, topic, state) events:
    ``leaf_hash(encode_leaf(...))`` for each, without per-field checks (trusted input only)."""
    topics = _topics
    return [_sha256(_LEAF_PREFIX + oid + _VERSION_AND_TOPIC_LENGTH(version, (t := topics[topic])[0]) + t[1]
                    + _LENGTH(len(state)) + state).digest() for oid, version, topic, state in events]


def row_hashes(rows: Sequence[tuple[Any, int, str, bytes, Any]], *, hex_ids: bool) -> list[bytes]:
    """As :func:`leaf_hashes`, over rows (originator id, version, topic, state, position) as the
    log scan reads them; the id is 16 bytes, or 32 hex digits (how SQLite stores it) if ``hex_ids``.
    Raises ValueError, TypeError or struct.error on a value that cannot be part of a leaf (the
    reference then names the problem)."""
    topics = _topics
    if hex_ids:
        # exactly 32 hex digits: bytes.fromhex would skip spaces, uuid.UUID would refuse them
        if any(len(row[0]) != 32 for row in rows):
            raise ValueError("an originator id is 32 hex digits")
        fromhex = bytes.fromhex
        return [_sha256(_LEAF_PREFIX + fromhex(oid) + _VERSION_AND_TOPIC_LENGTH(version, (t := topics[topic])[0])
                        + t[1] + _LENGTH(len(state)) + state).digest() for oid, version, topic, state, _ in rows]
    return [_sha256(_LEAF_PREFIX + oid + _VERSION_AND_TOPIC_LENGTH(version, (t := topics[topic])[0]) + t[1]
                    + _LENGTH(len(state)) + state).digest() for oid, version, topic, state, _ in rows]


def tree_levels_python(hashes: Sequence[bytes]) -> list[list[bytes]]:
    """Every perfect subtree of an aligned run of leaf hashes, a level at a time:
    ``levels[L][j]`` is the root of leaves ``[j * 2**L, (j + 1) * 2**L)`` of the run."""
    levels = [list(hashes)]
    current = levels[0]
    while len(current) > 1:
        pairs = iter(current)
        current = [_sha256(b"\x01" + left + right).digest() for left, right in zip(pairs, pairs)]
        levels.append(current)
    return levels


def page_edges_python(first: int, hashes: Sequence[bytes], stored_nodes: Mapping[tuple[int, int], bytes],
                      counts: Sequence[int], min_level: int = STORED_LEVEL) -> list[list[bytes]] | None:
    """For each of ``counts``, the perfect subtrees (largest first) making up the first ``count``
    leaves of a page of leaf hashes starting at leaf ``first``; None if a node of the page at
    ``min_level`` or above is not in ``stored_nodes`` with exactly the rebuilt hash."""
    levels = tree_levels_python(hashes)
    for level in range(min_level, len(levels)):
        base = first >> level
        if [stored_nodes.get((level, base + j)) for j in range(len(levels[level]))] != levels[level]:
            return None
    return [_edge(levels, count) for count in counts]


try:  # the same in C (ledger/integrity/_scan.c, OpenSSL's SHA-256), when the extension is built
    from ledger.integrity._scan import leaf_hashes, page_edges, tree_levels
except ImportError:
    leaf_hashes, page_edges, tree_levels = leaf_hashes_python, page_edges_python, tree_levels_python


def extend(size: int, frontier: list[bytes], hashes: Sequence[bytes],
           min_level: int = STORED_LEVEL) -> tuple[list[bytes], list[tuple[int, int, bytes]]]:
    """Append leaf hashes to a tree of ``size`` leaves with right edge ``frontier`` (one hash per
    ``merkle.frontier_addresses(size)``). Returns the new right edge and the perfect nodes
    (level, index, hash) at ``min_level`` or above that the new leaves complete, in the order
    ``merkle.Frontier.append`` creates them."""
    frontier = list(frontier)
    nodes: list[tuple[int, int, bytes]] = []
    for digest in hashes:
        level, acc = 0, digest
        while size >> level & 1:  # a complete subtree of this level sits to our left
            acc = _sha256(b"\x01" + frontier.pop() + acc).digest()
            level += 1
            if level >= min_level:
                nodes.append((level, size >> level, acc))
        frontier.append(acc)
        size += 1
    return frontier, nodes


def load_frontier(size: int, stored: Callable[[int, int], bytes], tail: Sequence[bytes],
                  min_level: int = STORED_LEVEL) -> list[bytes]:
    """The right edge of a stored tree of ``size`` leaves: subtrees of ``min_level`` and above are
    read with ``stored(level, index)``; the smaller ones are rebuilt from ``tail``, the hashes of
    the last ``size % 2**min_level`` leaves."""
    block = 1 << min_level
    if len(tail) != size % block:
        raise ValueError(f"need the last {size % block} leaf hashes, got {len(tail)}")
    edge = [bytes(stored(level, index)) for level, index in frontier_addresses(size - size % block)]
    levels = tree_levels(tail) if tail else []
    offset = 0
    for level in range(min_level - 1, -1, -1):
        if len(tail) >> level & 1:
            edge.append(levels[level][offset >> level])
            offset += 1 << level
    return edge


@dataclass(frozen=True)
class PageSummary:
    """What the rest of the replay needs of a page whose leaves and inner nodes checked out."""

    first: int  # index of the page's first leaf
    count: int
    edge: list[bytes]  # perfect subtrees making up the page, largest first (a full page: its root)
    checkpoint_edges: dict[int, list[bytes]]  # tree size in the page -> subtrees of the page up to it


def summarise_page(first: int, hashes: Sequence[bytes], stored_nodes: Mapping[tuple[int, int], bytes],
                   checkpoint_sizes: Iterable[int] = ()) -> PageSummary | None:
    """Check the stored nodes that lie wholly inside a page of (already checked) leaf hashes,
    starting at leaf ``first`` (a multiple of the page size); None if one differs or is missing.
    Needs nothing from the rest of the log, so pages can be summarised in parallel."""
    count = len(hashes)
    sizes = [size for size in checkpoint_sizes if first < size <= first + count]
    edges = page_edges(first, hashes, stored_nodes, [count, *(size - first for size in sizes)], STORED_LEVEL)
    if edges is None:
        return None
    return PageSummary(first, count, edges[0], dict(zip(sizes, edges[1:])))


class PageReplay:
    """Verified state of a log replayed a page of leaves at a time (the fast path of verification).

    Pages start at multiples of ``page_size`` (a power of two, at least 2**STORED_LEVEL) and all
    but the last are full. :meth:`add` accepts a page's summary only if the nodes that join it to
    the pages before it are stored with the right hashes and every checkpoint whose size falls in
    the page has the rebuilt root; otherwise it leaves the state as it was, so that the caller can
    replay that page with the reference verifier from :attr:`size` and :attr:`frontier`.
    """

    def __init__(self, checkpoints: Iterable[Checkpoint], page_size: int):
        if page_size & (page_size - 1) or page_size < 1 << STORED_LEVEL:
            raise ValueError("the page size must be a power of two of at least 2**STORED_LEVEL")
        self.page_size = page_size
        self.size = 0
        self.frontier: list[bytes] = []  # aligned with frontier_addresses(size)
        self.pending = sorted(checkpoints, key=lambda c: c.size)
        self.next_checkpoint = 0
        self.finished = False  # after a partial page nothing more can follow

    @staticmethod
    def stored_node_ranges(first: int, count: int) -> list[tuple[int, int, int]]:
        """(level, first index, last index) of the stored nodes that leaves ``first`` ..
        ``first + count - 1`` complete — inside the page and joining it to the pages before.
        Node (L, i) is completed by leaf (i + 1) * 2**L - 1."""
        end = first + count
        ranges = []
        for level in range(STORED_LEVEL, end.bit_length() + 1):
            low, high = first >> level, (end >> level) - 1
            if low <= high:
                ranges.append((level, low, high))
        return ranges

    def checkpoint_sizes(self, first: int, count: int) -> list[int]:
        return [c.size for c in self.pending[self.next_checkpoint:] if first < c.size <= first + count]

    def add_page(self, first: int, hashes: Sequence[bytes], stored_nodes: Mapping[tuple[int, int], bytes]) -> bool:
        """Summarise and add a page in one step (the sequential driver)."""
        summary = summarise_page(first, hashes, stored_nodes, self.checkpoint_sizes(first, len(hashes)))
        return summary is not None and self.add(summary, stored_nodes)

    def add(self, page: PageSummary, stored_nodes: Mapping[tuple[int, int], bytes]) -> bool:
        """Join a summarised page to the log (``stored_nodes`` must hold the nodes it completes
        above the page itself, see :meth:`stored_node_ranges`)."""
        if self.finished or page.first != self.size or page.first % self.page_size or \
                not 0 < page.count <= self.page_size:
            raise ValueError(f"pages must follow each other: expected one at {self.size}, got {page.first}")
        frontier = self.frontier
        full = page.count == self.page_size
        if full:  # merge the page's root into the right edge, as binary addition of page_size
            frontier = list(frontier)
            level, acc = self.page_size.bit_length() - 1, page.edge[0]
            while self.size >> level & 1:
                acc = _sha256(b"\x01" + frontier.pop() + acc).digest()
                level += 1
                if stored_nodes.get((level, page.first >> level)) != acc:
                    return False
            frontier.append(acc)
        next_checkpoint = self.next_checkpoint
        while next_checkpoint < len(self.pending) and self.pending[next_checkpoint].size <= page.first + page.count:
            checkpoint = self.pending[next_checkpoint]
            edge = page.checkpoint_edges.get(checkpoint.size)
            if edge is None or _fold(self.frontier + edge) != checkpoint.root:
                return False
            next_checkpoint += 1
        self.frontier = frontier if full else self.frontier + page.edge
        self.size += page.count
        self.next_checkpoint = next_checkpoint
        self.finished = not full
        return True

    def replayed(self, size: int, frontier: list[bytes], checkpoints_checked: int) -> None:
        """Take over the state after a page that the reference verifier replayed without a problem
        (``checkpoints_checked``: how many of the remaining checkpoints it checked)."""
        self.size, self.frontier = size, list(frontier)
        self.next_checkpoint += checkpoints_checked
        self.finished = size % self.page_size != 0

    @property
    def checkpoints_checked(self) -> int:
        return self.next_checkpoint

    def remaining_checkpoints(self) -> list[Checkpoint]:
        return self.pending[self.next_checkpoint:]


def _edge(levels: list[list[bytes]], count: int) -> list[bytes]:
    """The perfect subtrees (largest first) making up the first ``count`` leaves of a page."""
    edge, offset = [], 0
    for level in range(count.bit_length() - 1, -1, -1):
        if count >> level & 1:
            edge.append(levels[level][offset >> level])
            offset += 1 << level
    return edge
