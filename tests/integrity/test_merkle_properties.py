"""The stored-node Merkle code agrees with the RFC 9162 reference definitions, and is O(log n)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.integrity.merkle import (
    EMPTY_ROOT, Frontier, consistency_proof, frontier_addresses, inclusion_proof, leaf_hash, reference_consistency,
    reference_inclusion, reference_root, root, subtree_hash, verify_consistency, verify_inclusion,
)

N = 300
LEAVES = [leaf_hash(b"leaf %d" % i) for i in range(N)]  # distinct leaves
STORE: dict[tuple[int, int], bytes] = {}
FRONTIERS: list[Frontier] = [Frontier()]  # FRONTIERS[n]: frontier after n appends
APPENDED: list[list[tuple[int, int, bytes]]] = []  # what append(LEAVES[i]) returned
for _leaf in LEAVES:
    _frontier = FRONTIERS[-1].copy()
    APPENDED.append(_frontier.append(_leaf))
    FRONTIERS.append(_frontier)
    STORE.update({(level, index): digest for level, index, digest in APPENDED[-1]})
REFERENCE_ROOTS = [reference_root(LEAVES[:n]) for n in range(N + 1)]


def get_node(level: int, index: int) -> bytes:
    return STORE[(level, index)]


SOME = leaf_hash(b"not in the tree")
sizes = st.integers(min_value=0, max_value=N)
PROPERTY = settings(max_examples=150, deadline=None)


def flip(proof: list[bytes], element: int, byte: int, mask: int) -> list[bytes]:
    wrong = list(proof)
    b = bytearray(wrong[element])
    b[byte] ^= mask
    wrong[element] = bytes(b)
    return wrong


def test_roots_of_every_size_match_the_reference() -> None:
    for n in range(N + 1):
        assert FRONTIERS[n].size == n
        assert FRONTIERS[n].root() == REFERENCE_ROOTS[n]
        assert root(n, get_node) == REFERENCE_ROOTS[n]


def test_append_returns_exactly_the_completed_perfect_nodes() -> None:
    for i, created in enumerate(APPENDED):
        # Leaf i completes the perfect subtree of level L iff i + 1 is a multiple of 2**L.
        levels = [level for level in range(10) if (i + 1) % (1 << level) == 0]
        assert [(level, index) for level, index, _ in created] == [(level, i >> level) for level in levels]
        for level, index, digest in created:
            assert digest == reference_root(LEAVES[index << level:(index + 1) << level])
    perfect = {(level, index) for level in range(10) for index in range(N >> level)}
    assert set(STORE) == perfect


def test_append_refuses_what_is_not_a_hash() -> None:
    with pytest.raises(ValueError):
        Frontier().append(b"short")


def test_load_equals_the_incrementally_built_frontier_with_popcount_reads() -> None:
    for n in range(N + 1):
        reads = []

        def read(level: int, index: int) -> bytes:
            reads.append((level, index))
            return STORE[(level, index)]

        loaded = Frontier.load(n, read)
        assert loaded == FRONTIERS[n]
        assert reads == frontier_addresses(n) and len(reads) == bin(n).count("1")
        if n < N:  # and it carries on exactly as the original would
            assert loaded.append(LEAVES[n]) == APPENDED[n]
            assert loaded == FRONTIERS[n + 1]


def test_copy_is_independent() -> None:
    original = FRONTIERS[5].copy()
    clone = original.copy()
    clone.append(LEAVES[5])
    assert original == FRONTIERS[5] and clone == FRONTIERS[6] and original != clone


@PROPERTY
@given(st.data())
def test_inclusion_proofs(data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=1, max_value=N), label="size")
    i = data.draw(st.integers(min_value=0, max_value=n - 1), label="index")
    proof = inclusion_proof(i, n, get_node)
    assert proof == reference_inclusion(i, LEAVES[:n])
    assert verify_inclusion(LEAVES[i], i, n, proof, REFERENCE_ROOTS[n])

    if proof:  # any flipped byte in the proof breaks it
        element = data.draw(st.integers(0, len(proof) - 1), label="element")
        byte = data.draw(st.integers(0, 31), label="byte")
        mask = data.draw(st.integers(1, 255), label="mask")
        assert not verify_inclusion(LEAVES[i], i, n, flip(proof, element, byte, mask), REFERENCE_ROOTS[n])
    j = data.draw(st.integers(0, n + 2).filter(lambda j: j != i), label="wrong index")
    assert not verify_inclusion(LEAVES[i], j, n, proof, REFERENCE_ROOTS[n])
    assert not verify_inclusion(LEAVES[j % n] if j % n != i else SOME, i, n, proof, REFERENCE_ROOTS[n])
    # Another size, with that size's root: verifies only if it is literally that size's proof too.
    m = data.draw(st.integers(0, N).filter(lambda m: m != n), label="wrong size")
    genuine = m > i and proof == reference_inclusion(i, LEAVES[:m])
    assert verify_inclusion(LEAVES[i], i, m, proof, REFERENCE_ROOTS[m]) is genuine
    assert not verify_inclusion(LEAVES[i], i, n, proof, SOME)
    assert not verify_inclusion(LEAVES[i], i, n, proof + [SOME], REFERENCE_ROOTS[n])
    if proof:
        assert not verify_inclusion(LEAVES[i], i, n, proof[:-1], REFERENCE_ROOTS[n])


@PROPERTY
@given(st.data())
def test_consistency_proofs(data: st.DataObject) -> None:
    n = data.draw(sizes, label="new size")
    m = data.draw(st.integers(0, n), label="old size")
    proof = consistency_proof(m, n, get_node)
    assert proof == reference_consistency(m, LEAVES[:n])
    assert verify_consistency(m, n, REFERENCE_ROOTS[m], REFERENCE_ROOTS[n], proof)
    if not 0 < m < n:
        assert proof == []
        return
    element = data.draw(st.integers(0, len(proof) - 1), label="element")
    byte = data.draw(st.integers(0, 31), label="byte")
    mask = data.draw(st.integers(1, 255), label="mask")
    assert not verify_consistency(m, n, REFERENCE_ROOTS[m], REFERENCE_ROOTS[n], flip(proof, element, byte, mask))
    assert not verify_consistency(m, n, REFERENCE_ROOTS[m], SOME, proof)
    assert not verify_consistency(m, n, SOME, REFERENCE_ROOTS[n], proof)
    assert not verify_consistency(m, n, REFERENCE_ROOTS[n], REFERENCE_ROOTS[m], proof)
    assert not verify_consistency(m, n, REFERENCE_ROOTS[m], REFERENCE_ROOTS[n], proof[:-1])
    assert not verify_consistency(m, n, REFERENCE_ROOTS[m], REFERENCE_ROOTS[n], proof + [SOME])
    # Other sizes, with their own roots: only the genuine proof for those sizes verifies.
    m2 = data.draw(st.integers(0, n).filter(lambda x: x != m), label="wrong old size")
    assert verify_consistency(m2, n, REFERENCE_ROOTS[m2], REFERENCE_ROOTS[n], proof) is (
        proof == reference_consistency(m2, LEAVES[:n]))
    n2 = data.draw(st.integers(m, N).filter(lambda x: x != n), label="wrong new size")
    assert verify_consistency(m, n2, REFERENCE_ROOTS[m], REFERENCE_ROOTS[n2], proof) is (
        proof == reference_consistency(m, LEAVES[:n2]))


@PROPERTY
@given(st.data())
def test_subtree_hash_of_proof_ranges(data: st.DataObject) -> None:
    level = data.draw(st.integers(0, 8))
    start = data.draw(st.integers(0, (N - 1) >> level)) << level  # aligned to 2**level
    end = data.draw(st.integers(start + 1, min(N, start + (2 << level) - 1)))
    if (end - start).bit_length() - 1 > level:
        return  # not aligned to its largest part: not a proof range
    assert subtree_hash(start, end, get_node) == reference_root(LEAVES[start:end])


def test_subtree_hash_refuses_ranges_that_are_not_proof_ranges() -> None:
    for start, end in ((1, 3), (2, 6), (3, 3), (5, 4), (-1, 1)):
        with pytest.raises(ValueError):
            subtree_hash(start, end, get_node)


def test_hostile_inputs_never_raise() -> None:
    hostile = [None, "x", b"", 1.5, -1, True, [None], [b"x" * 31], (EMPTY_ROOT,), {"a": 1}]
    for value in hostile:
        assert verify_inclusion(value, 0, 1, [], EMPTY_ROOT) is False
        assert verify_inclusion(LEAVES[0], value, 1, [], LEAVES[0]) is False
        assert verify_inclusion(LEAVES[0], 0, value, [], LEAVES[0]) is False
        assert verify_inclusion(LEAVES[0], 0, 2, value, REFERENCE_ROOTS[2]) is False
        assert verify_consistency(value, 2, LEAVES[0], REFERENCE_ROOTS[2], [LEAVES[1]]) is False
        assert verify_consistency(1, 2, LEAVES[0], REFERENCE_ROOTS[2], value) is False
        assert verify_consistency(1, 2, value, REFERENCE_ROOTS[2], [LEAVES[1]]) is False
    assert verify_inclusion(LEAVES[0], 0, 2**80, [LEAVES[1]] * 200, REFERENCE_ROOTS[2]) is False


# --- cost: O(log n) node reads, at n = 100 000 ---

BIG_N = 100_000


@pytest.fixture(scope="module")
def big_store() -> dict[tuple[int, int], bytes]:
    store: dict[tuple[int, int], bytes] = {}
    frontier = Frontier()
    for i in range(BIG_N):
        for level, index, digest in frontier.append(leaf_hash(i.to_bytes(4, "big"))):
            store[(level, index)] = digest
    return store


def counting(store: dict[tuple[int, int], bytes]):
    reads = []

    def read(level: int, index: int) -> bytes:
        reads.append((level, index))
        return store[(level, index)]

    return reads, read


def test_proofs_cost_logarithmic_reads(big_store: dict[tuple[int, int], bytes]) -> None:
    bound = 2 * math.log2(BIG_N) + 2
    reads, read = counting(big_store)
    assert len(Frontier.load(BIG_N, read).root().hex()) == 64 and len(reads) <= math.log2(BIG_N) + 1
    tree_root = root(BIG_N, lambda lv, ix: big_store[(lv, ix)])
    for index in (0, 1, 2, 12_345, 65_535, 65_536, 99_998, BIG_N - 1):
        reads, read = counting(big_store)
        proof = inclusion_proof(index, BIG_N, read)
        assert len(reads) <= bound, (index, len(reads))
        assert verify_inclusion(leaf_hash(index.to_bytes(4, "big")), index, BIG_N, proof, tree_root)
    for old in (1, 2, 3, 1000, 65_535, 65_536, 65_537, 77_777, BIG_N - 1):
        reads, read = counting(big_store)
        proof = consistency_proof(old, BIG_N, read)
        assert len(reads) <= bound, (old, len(reads))
        old_root = root(old, lambda lv, ix: big_store[(lv, ix)])
        assert verify_consistency(old, BIG_N, old_root, tree_root, proof)
