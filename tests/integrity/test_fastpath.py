"""The fast path computes exactly what the auditor-readable reference code computes."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.integrity.checkpoint import Checkpoint
from ledger.integrity.fastpath import (PageReplay, extend, leaf_hashes, leaf_hashes_python, load_frontier,
                                       row_hashes, tree_levels)
from ledger.integrity.leaf import encode_leaf
from ledger.integrity.merkle import (STORED_LEVEL, Frontier, frontier_addresses, leaf_hash,
                                     reference_root)
from ledger.integrity.verifier import LeafRecord, NodeMap, verify_log

T0 = datetime(2025, 9, 1, tzinfo=timezone.utc)
events = st.tuples(st.uuids(), st.integers(0, 2**64 - 1), st.text(max_size=40), st.binary(max_size=300))


@given(st.lists(events, max_size=20))
def test_leaf_hashes_are_the_reference_encoding_hashed(batch):
    expected = [leaf_hash(encode_leaf(oid, version, topic, state)) for oid, version, topic, state in batch]
    assert leaf_hashes([(oid.bytes, version, topic, state) for oid, version, topic, state in batch]) == expected
    assert leaf_hashes_python([(oid.bytes, v, t, s) for oid, v, t, s in batch]) == expected  # when C is built
    assert row_hashes([(oid.bytes, v, t, s, 0) for oid, v, t, s in batch], hex_ids=False) == expected
    assert row_hashes([(oid.hex, v, t, s, 0) for oid, v, t, s in batch], hex_ids=True) == expected


def test_row_hashes_refuse_what_is_not_a_leaf():
    oid = uuid.uuid4()
    with pytest.raises(ValueError):
        row_hashes([(" " + oid.hex[1:] + " ", 1, "t", b"", 0)], hex_ids=True)  # fromhex would skip spaces
    with pytest.raises(UnicodeError):
        row_hashes([(oid.bytes, 1, "\udc80", b"", 0)], hex_ids=False)
    for hashes in (leaf_hashes, leaf_hashes_python):
        with pytest.raises(UnicodeError):
            hashes([(oid.bytes, 1, "\udc80", b"")])


def leaf(i: int) -> bytes:
    return encode_leaf(uuid.UUID(int=i + 1), 1, "domain.ticket:Ticket.Event", b"%d" % i)


def hashes(n: int) -> list[bytes]:
    return [leaf_hash(leaf(i)) for i in range(n)]


@given(st.integers(0, 300), st.integers(0, 70))
def test_extend_is_frontier_append(size, more):
    leaves = hashes(size + more)
    reference = Frontier()
    for digest in leaves[:size]:
        reference.append(digest)
    created = []
    for digest in leaves[size:]:
        created += [node for node in reference.append(digest) if node[0] >= STORED_LEVEL]
    start = Frontier()
    for digest in leaves[:size]:
        start.append(digest)
    frontier, nodes = extend(size, start.hashes, leaves[size:])
    assert frontier == reference.hashes and nodes == created


@given(st.integers(0, 600))
def test_load_frontier_reads_stored_nodes_and_rebuilds_the_tail(size):
    leaves = hashes(size)
    stored = {}
    frontier = Frontier()
    for digest in leaves:
        stored.update({(level, index): h for level, index, h in frontier.append(digest)})
    tail = leaves[size - size % 16:]
    read = []

    def get(level, index):
        read.append(level)
        return stored[(level, index)]

    assert load_frontier(size, get, tail) == frontier.hashes
    assert all(level >= STORED_LEVEL for level in read) and len(read) <= size.bit_length()


@given(st.integers(1, 200))
def test_tree_levels_are_perfect_subtrees(n):
    leaves = hashes(n)
    levels = tree_levels(leaves)
    for level, row in enumerate(levels):
        assert row == [reference_root(leaves[j << level:(j + 1) << level]) for j in range(n >> level)]


def build(n: int, checkpoint_sizes: list[int]):
    leaves = hashes(n)
    frontier, stored, checkpoints = Frontier(), NodeMap(), []
    for digest in leaves:
        stored.update({(lv, ix): h for lv, ix, h in frontier.append(digest) if lv >= STORED_LEVEL})
        checkpoints += [Checkpoint("o", frontier.size, frontier.root(), T0) for s in checkpoint_sizes
                        if s == frontier.size]
    return leaves, stored, checkpoints


def run_pages(leaves, stored, checkpoints, page):
    replay = PageReplay(checkpoints, page)
    for first in range(0, len(leaves), page):
        chunk = leaves[first:first + page]
        nodes = {key: stored[key] for lv, lo, hi in PageReplay.stored_node_ranges(first, len(chunk))
                 for key in ((lv, ix) for ix in range(lo, hi + 1)) if key in stored}
        if not replay.add_page(first, chunk, nodes):
            return replay, first
    return replay, None


@settings(max_examples=60)
@given(st.integers(1, 700), st.sampled_from([16, 32, 128]), st.lists(st.integers(1, 700), max_size=6))
def test_page_replay_agrees_with_the_reference_replay(n, page, sizes):
    sizes = [s for s in sizes if s <= n]
    leaves, stored, checkpoints = build(n, sizes)
    records = [LeafRecord(i, d, leaf(i), i + 1, "") for i, d in enumerate(leaves)]
    assert verify_log(records, checkpoints, stored_nodes=stored).ok
    replay, failed = run_pages(leaves, stored, checkpoints, page)
    assert failed is None and replay.size == n and replay.checkpoints_checked == len(checkpoints)
    reference = Frontier()
    for digest in leaves:
        reference.append(digest)
    assert replay.frontier == reference.hashes
    # every stored node the pages complete was asked for: nothing is left unchecked
    asked = {(lv, ix) for first in range(0, n, page)
             for lv, lo, hi in PageReplay.stored_node_ranges(first, min(page, n - first)) for ix in range(lo, hi + 1)}
    assert asked == set(stored)


@settings(max_examples=40)
@given(st.integers(17, 500), st.sampled_from([16, 64]), st.randoms(use_true_random=False))
def test_page_replay_rejects_the_page_of_a_forged_node_or_root(n, page, rnd: random.Random):
    leaves, stored, checkpoints = build(n, [n])
    key = rnd.choice(sorted(stored))
    forged = NodeMap(stored)
    forged[key] = bytes(32)
    report = verify_log([LeafRecord(i, d, leaf(i), i + 1, "") for i, d in enumerate(leaves)], checkpoints,
                        stored_nodes=forged)
    _, failed = run_pages(leaves, forged, checkpoints, page)
    assert failed is not None and failed <= report.first_problem.leaf_index < failed + page
    bad = [Checkpoint("o", n, bytes(32), T0)]
    _, failed = run_pages(leaves, stored, bad, page)
    assert failed == (n - 1) // page * page


def test_stored_node_ranges_cover_exactly_the_completed_nodes():
    for first, count in ((0, 16), (16, 16), (48, 16), (0, 15), (64, 64), (192, 64), (4096, 100)):
        expected = {(lv, ix) for lv in range(STORED_LEVEL, 20) for ix in range(1 << 12)
                    if first <= ((ix + 1) << lv) - 1 < first + count}
        got = {(lv, ix) for lv, lo, hi in PageReplay.stored_node_ranges(first, count) for ix in range(lo, hi + 1)}
        assert got == expected
    assert frontier_addresses(0) == []
