"""Published RFC 6962 test vectors.

The 8 leaves, the roots of tree sizes 1..8 and the inclusion/consistency proofs are the vectors of
Certificate Transparency's reference tests, as kept in transparency-dev/merkle
``proof/verify_test.go`` (originally google/certificate-transparency ``merkle_tree_test.cc`` and
certificate-transparency-go ``merkletree``). In those files leaf numbers of inclusion proofs are
1-based ("leaf 1" = index 0); below they are converted to 0-based indexes.

The node sets read for a proof come from transparency-dev/merkle ``proof/proof_test.go``
(TestInclusion / TestConsistency), which lists, for each proof, the stored (level, index) nodes
it is made of.
"""

from __future__ import annotations

import pytest

from ledger.integrity.merkle import (
    EMPTY_ROOT, Frontier, consistency_proof, inclusion_proof, leaf_hash, node_hash, reference_consistency,
    reference_inclusion, reference_root, root, verify_consistency, verify_inclusion,
)

h = bytes.fromhex

LEAF_INPUTS = [h(x) for x in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f",
)]
LEAVES = [leaf_hash(d) for d in LEAF_INPUTS]

ROOTS = {size: h(x) for size, x in enumerate([
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
])}

# (index, size, proof); index 0-based.
INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (0, 1, []),
]

# (old size, new size, proof)
CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]

SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


def stored_tree(leaves: list[bytes]) -> dict[tuple[int, int], bytes]:
    nodes: dict[tuple[int, int], bytes] = {}
    frontier = Frontier()
    for leaf in leaves:
        nodes.update({(level, index): digest for level, index, digest in frontier.append(leaf)})
    return nodes


STORE = stored_tree(LEAVES)


def get_node(level: int, index: int) -> bytes:
    return STORE[(level, index)]


def test_empty_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT == ROOTS[0] == reference_root([]) == Frontier().root() == root(0, get_node)


@pytest.mark.parametrize("size", range(1, 9))
def test_roots(size: int) -> None:
    frontier = Frontier()
    for leaf in LEAVES[:size]:
        frontier.append(leaf)
    assert frontier.root() == ROOTS[size]
    assert reference_root(LEAVES[:size]) == ROOTS[size]
    assert root(size, get_node) == ROOTS[size]  # smaller trees inside the stored size-8 tree


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_vectors(index: int, size: int, proof: list[str]) -> None:
    expected = [h(p) for p in proof]
    assert inclusion_proof(index, size, get_node) == expected
    assert reference_inclusion(index, LEAVES[:size]) == expected
    assert verify_inclusion(LEAVES[index], index, size, expected, ROOTS[size])


def inclusion_probes(index: int, size: int, proof: list[bytes], root_hash: bytes, leaf: bytes):
    """The corruptions of transparency-dev/merkle proof/verify_test.go corruptInclusionProof."""
    yield index - 1, size, root_hash, leaf, proof
    yield index + 1, size, root_hash, leaf, proof
    yield index ^ 2, size, root_hash, leaf, proof
    yield index, size * 2, root_hash, leaf, proof
    yield index, size // 2, root_hash, leaf, proof
    yield index, size, root_hash, b"WrongLeaf", proof
    yield index, size, EMPTY_ROOT, leaf, proof
    yield index, size, SOME_HASH, leaf, proof
    yield index, size, root_hash, leaf, proof + [b""]
    yield index, size, root_hash, leaf, proof + [root_hash]
    yield index, size, root_hash, leaf, [b""] + proof
    yield index, size, root_hash, leaf, [root_hash] + proof
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 8]) + wrong[i][1:]
        yield index, size, root_hash, leaf, wrong
    if proof:
        yield index, size, root_hash, leaf, proof[:-1]
    if len(proof) > 1:
        yield index, size, root_hash, leaf, [proof[0], SOME_HASH] + proof[1:]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_corrupted_inclusion_proofs_fail(index: int, size: int, proof: list[str]) -> None:
    good = [h(p) for p in proof]
    for probe in inclusion_probes(index, size, good, ROOTS[size], LEAVES[index]):
        i, n, root_hash, leaf, wrong = probe
        assert not verify_inclusion(leaf, i, n, wrong, root_hash), probe


def test_single_entry_inclusion() -> None:
    digest = leaf_hash(b"data")  # root of a 1-leaf tree = its leaf hash; the proof is empty
    assert verify_inclusion(digest, 0, 1, [], digest)
    assert not verify_inclusion(digest, 0, 1, [], b"")
    assert not verify_inclusion(b"", 0, 1, [], digest)
    for index, size in ((0, 0), (1, 0), (2, 1), (1, 1)):
        assert not verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_vectors(old: int, new: int, proof: list[str]) -> None:
    expected = [h(p) for p in proof]
    assert consistency_proof(old, new, get_node) == expected
    assert reference_consistency(old, LEAVES[:new]) == expected
    assert verify_consistency(old, new, ROOTS[old], ROOTS[new], expected)


@pytest.mark.parametrize(("old", "new", "proof"), [c for c in CONSISTENCY if c[2]])
def test_corrupted_consistency_proofs_fail(old: int, new: int, proof: list[str]) -> None:
    """The corruptions of transparency-dev/merkle proof/verify_test.go corruptConsistencyProof."""
    good = [h(p) for p in proof]
    r1, r2 = ROOTS[old], ROOTS[new]
    probes = [
        (old - 1, new, r1, r2, good), (old + 1, new, r1, r2, good), (old ^ 2, new, r1, r2, good),
        (old, new * 2, r1, r2, good), (old, new // 2, r1, r2, good),
        (old, new, b"WrongRoot", r2, good), (old, new, r1, b"WrongRoot", good), (old, new, r2, r1, good),
        (old, new, r1, r2, []),
        (old, new, r1, r2, good + [b""]), (old, new, r1, r2, good + [r1]), (old, new, r1, r2, good + [r2]),
        (old, new, r1, r2, [b""] + good), (old, new, r1, r2, [r1] + good), (old, new, r1, r2, [r2] + good),
        (old, new, r1, r2, [good[0]] + good),
        (old, new, r1, r2, good[:-1]),
    ]
    for i in range(len(good)):
        wrong = list(good)
        wrong[i] = bytes([wrong[i][0] ^ 16]) + wrong[i][1:]
        probes.append((old, new, r1, r2, wrong))
    for probe in probes:
        assert not verify_consistency(*probe), probe


@pytest.mark.parametrize(("old", "new", "old_root", "new_root", "proof", "ok"), [
    (0, 0, EMPTY_ROOT, EMPTY_ROOT, [], True),
    (0, 0, SOME_HASH, SOME_HASH, [], True),  # equal sizes: equal roots suffice (as transparency-dev)
    (0, 0, EMPTY_ROOT, SOME_HASH, [], False),
    (1, 1, ROOTS[1], ROOTS[1], [], True),
    (1, 1, ROOTS[1], ROOTS[2], [], False),
    (0, 5, EMPTY_ROOT, ROOTS[5], [], True),  # every tree extends the empty tree
    (0, 5, SOME_HASH, ROOTS[5], [], False),  # ... but this is not the empty tree's root (stricter)
    (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),  # roots match but the proof is not empty
    (0, 1, EMPTY_ROOT, ROOTS[1], [EMPTY_ROOT], False),
    (1, 1, ROOTS[1], ROOTS[1], [EMPTY_ROOT], False),
    (1, 0, ROOTS[1], EMPTY_ROOT, [], False),  # time travel to the past
    (2, 1, ROOTS[2], ROOTS[1], [], False),
    (1, 2, ROOTS[1], ROOTS[2], [], False),  # empty proof
    (1, 2, ROOTS[1], ROOTS[2], [LEAVES[1]], True),
    (-1, 2, ROOTS[1], ROOTS[2], [LEAVES[1]], False),
    (1, 2, ROOTS[1], ROOTS[2], None, False),
    (1, 2, ROOTS[1], ROOTS[2], [LEAVES[1].hex()], False),
    (1, 2, ROOTS[1], "not a hash", [LEAVES[1]], False),
])
def test_consistency_edge_cases(old, new, old_root, new_root, proof, ok) -> None:
    assert verify_consistency(old, new, old_root, new_root, proof) is ok


def test_node_hash_prefix() -> None:
    assert node_hash(LEAVES[0], LEAVES[1]) == ROOTS[2]


# Which stored (level, index) nodes make up each proof: transparency-dev/merkle proof/proof_test.go.
INCLUSION_NODES = [
    (0, 7, {(0, 1), (1, 1), (0, 6), (1, 2)}),
    (2, 7, {(0, 3), (1, 0), (0, 6), (1, 2)}),
    (4, 7, {(0, 5), (0, 6), (2, 0)}),
    (6, 7, {(1, 2), (2, 0)}),
    (3, 5, {(0, 2), (1, 0), (0, 4)}),
    (10, 15, {(0, 11), (1, 4), (0, 14), (1, 6), (3, 0)}),
    (24, 31, {(0, 25), (1, 13), (0, 30), (1, 14), (3, 2), (4, 0)}),
    (81, 95, {(0, 80), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0)}),
]
CONSISTENCY_NODES = [
    (1, 6, {(0, 1), (1, 1), (1, 2)}),
    (3, 7, {(0, 2), (0, 3), (1, 0), (0, 6), (1, 2)}),
    (4, 7, {(0, 6), (1, 2)}),
    (5, 7, {(0, 4), (0, 5), (0, 6), (2, 0)}),
    (7, 8, {(0, 6), (0, 7), (1, 2), (2, 0)}),
    (10, 15, {(1, 4), (1, 5), (0, 14), (1, 6), (3, 0)}),
    (24, 31, {(3, 2), (0, 30), (1, 14), (2, 6), (4, 0)}),
    (81, 95, {(0, 80), (0, 81), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0)}),
]
BIG = [leaf_hash(i.to_bytes(2, "big")) for i in range(95)]
BIG_STORE = stored_tree(BIG)


def recording_reader() -> tuple[list[tuple[int, int]], object]:
    reads: list[tuple[int, int]] = []

    def read(level: int, index: int) -> bytes:
        reads.append((level, index))
        return BIG_STORE[(level, index)]

    return reads, read


@pytest.mark.parametrize(("index", "size", "nodes"), INCLUSION_NODES)
def test_inclusion_reads_exactly_the_proof_nodes(index: int, size: int, nodes: set) -> None:
    reads, read = recording_reader()
    assert inclusion_proof(index, size, read) == reference_inclusion(index, BIG[:size])
    assert sorted(reads) == sorted(nodes)  # each node once, nothing else


@pytest.mark.parametrize(("old", "new", "nodes"), CONSISTENCY_NODES)
def test_consistency_reads_exactly_the_proof_nodes(old: int, new: int, nodes: set) -> None:
    reads, read = recording_reader()
    assert consistency_proof(old, new, read) == reference_consistency(old, BIG[:new])
    assert sorted(reads) == sorted(nodes)
