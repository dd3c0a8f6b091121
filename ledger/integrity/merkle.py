"""RFC 9162 (= RFC 6962) Merkle tree: hashing, appending, proofs and proof verification.

Hashes (RFC 9162 §2.1.1), SHA-256 throughout:

    leaf_hash(d)    = SHA-256(0x00 || d)
    node_hash(l, r) = SHA-256(0x01 || l || r)
    MTH({})         = SHA-256("")              (EMPTY_ROOT)

Storage model. Only *perfect* subtrees are kept: they never change once complete. Node
(level L, index i) is the root of the perfect subtree over leaves [i * 2**L, (i + 1) * 2**L);
level 0 holds the leaf hashes. The caller passes ``get_node(level, index) -> bytes`` to read them.
Every hash RFC 9162 needs (a root, a proof element) is that of a range splitting into at most
log2(n) + 1 perfect subtrees, so roots and proofs cost O(log n) reads, and appending one leaf
completes at most log2(n) + 1 new perfect subtrees. The database stores the leaves and the nodes
of level ``STORED_LEVEL`` and above (one node row per 16 leaves instead of one per leaf); a lower
node is rebuilt from its at most 2**STORED_LEVEL leaf hashes when a proof needs it, which keeps
proofs at O(log n) reads.

``reference_*`` are the RFC's plain recursive definitions over a list: slow, for tests only.
Verification functions never raise on untrusted input: anything malformed is just False.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Callable, Sequence

HASH_SIZE = 32
STORED_LEVEL = 4  # the lowest level of interior nodes the database stores (see the storage model)
EMPTY_ROOT = hashlib.sha256(b"").digest()

GetNode = Callable[[int, int], bytes]


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash; the 0x00 prefix keeps a leaf from passing for an interior node."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash, with prefix 0x01."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """k of RFC 9162 §2.1.1: the largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def frontier_addresses(size: int) -> list[tuple[int, int]]:
    """(level, index) of the perfect subtrees making a tree of ``size`` leaves, left to right:
    one per set bit of ``size``, largest first, e.g. 6 = 4 + 2 -> [(2, 0), (1, 2)]."""
    addresses, start = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            addresses.append((level, start >> level))
            start += 1 << level
    return addresses


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Combine perfect subtrees (largest first) right to left, as MTH's recursion does: MTH
    splits off the largest power of two k < n, which here is exactly the first subtree."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for left in reversed(hashes[:-1]):
        acc = node_hash(left, acc)
    return acc


class Frontier:
    """The right edge (compact range) of a tree: one perfect-subtree hash per set bit of size."""

    __slots__ = ("_size", "_hashes")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []  # aligned with frontier_addresses(self._size)

    @property
    def size(self) -> int:
        return self._size

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; return the perfect nodes (level, index, hash) it completes.

        The first returned node is the leaf itself (level 0). Like binary increment: the new
        leaf merges with the equal-sized subtrees on the right edge (the trailing 1 bits of size).
        """
        if not isinstance(leaf, bytes) or len(leaf) != HASH_SIZE:
            raise ValueError("a leaf hash is 32 bytes")
        index = self._size
        created = [(0, index, leaf)]
        level, acc = 0, leaf
        while index >> level & 1:  # a complete subtree of this level sits to our left
            acc = node_hash(self._hashes.pop(), acc)
            level += 1
            created.append((level, index >> level, acc))
        self._hashes.append(acc)
        self._size += 1
        return created

    @property
    def hashes(self) -> list[bytes]:
        """The perfect-subtree hashes, aligned with ``frontier_addresses(self.size)``."""
        return list(self._hashes)

    def root(self) -> bytes:
        """MTH of the current tree (RFC 9162 §2.1.1)."""
        return _fold(self._hashes)

    @classmethod
    def load(cls, size: int, get_node: GetNode) -> Frontier:
        """Rebuild the frontier of a stored tree: popcount(size) <= log2(size) + 1 reads."""
        if size < 0:
            raise ValueError("tree size cannot be negative")
        frontier = cls()
        frontier._size = size
        frontier._hashes = [_checked(get_node(level, index)) for level, index in frontier_addresses(size)]
        return frontier

    def copy(self) -> Frontier:
        other = Frontier()
        other._size, other._hashes = self._size, list(self._hashes)
        return other

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frontier):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes


def _checked(node: bytes) -> bytes:
    node = bytes(node)  # database drivers may hand back memoryview / bytearray
    if len(node) != HASH_SIZE:
        raise ValueError(f"stored node hash has {len(node)} bytes, expected {HASH_SIZE}")
    return node


def _memoised(get_node: GetNode) -> GetNode:
    """Read each stored node at most once per proof (a fresh cache per call: no stale hashes)."""
    return functools.cache(lambda level, index: _checked(get_node(level, index)))


def _range_hash(start: int, end: int, read: GetNode) -> bytes:
    n = end - start
    if n <= 0 or start < 0:
        raise ValueError(f"empty or negative range [{start}, {end})")
    # [start, end) is made of stored perfect subtrees (one per set bit of n) only if start is
    # aligned to the largest; every range in RFC 9162 roots and proofs (a side of an MTH split) is.
    if start % (1 << (n.bit_length() - 1)):
        raise ValueError(f"range [{start}, {end}) is not a subtree occurring in RFC 9162 proofs")
    return _fold([read(level, (start >> level) + index) for level, index in frontier_addresses(n)])


def subtree_hash(start: int, end: int, get_node: GetNode) -> bytes:
    """MTH(D[start:end]) from stored perfect subtrees, for ranges that occur in RFC 9162 proofs."""
    return _range_hash(start, end, _memoised(get_node))


def root(size: int, get_node: GetNode) -> bytes:
    """MTH of the first ``size`` leaves of the stored tree."""
    return EMPTY_ROOT if size == 0 else subtree_hash(0, size, get_node)


def inclusion_proof(index: int, size: int, get_node: GetNode) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1, leaf first, from stored nodes."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    read = _memoised(get_node)

    def path(m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = _split(n)
        if m < k:  # leaf is on the left: the sibling is the right part
            return path(m, start, start + k) + [_range_hash(start + k, end, read)]
        return path(m - k, start + k, end) + [_range_hash(start, start + k, read)]

    return path(index, 0, size)


def consistency_proof(old_size: int, new_size: int, get_node: GetNode) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true) of RFC 9162 §2.1.4.1; empty when old_size is 0
    or new_size (the RFC defines it for 0 < m < n only; see verify_consistency)."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    read = _memoised(get_node)

    def subproof(m: int, start: int, end: int, b: bool) -> list[bytes]:
        n = end - start
        if m == n:  # the old tree is this whole subtree: the verifier knows it iff b
            return [] if b else [_range_hash(start, end, read)]
        k = _split(n)
        if m <= k:
            return subproof(m, start, start + k, b) + [_range_hash(start + k, end, read)]
        return subproof(m - k, start + k, end, False) + [_range_hash(start, start + k, read)]

    return subproof(old_size, 0, new_size, True)


def _well_formed(sizes: Sequence[object], hashes: Sequence[object], proof: object) -> bool:
    """Sizes are non-negative ints, hashes and proof elements 32-byte strings."""
    if not isinstance(proof, (list, tuple)):
        return False
    return (all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in sizes)
            and all(isinstance(h, bytes) and len(h) == HASH_SIZE for h in (*hashes, *proof)))


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` show leaf hash ``leaf`` at ``index`` of tree ``root_hash``?"""
    if not _well_formed((index, size), (leaf, root_hash), proof) or index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:  # proof longer than the path to the root
            return False
        if fn & 1 or fn == sn:  # we are a right child, or the last node with no right sibling
            r = node_hash(p, r)
            while fn and not fn & 1:  # skip levels where the last node is promoted unchanged
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root_hash


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: is the tree (new_size, new_root) an append-only extension of the old one?

    The RFC's algorithm covers 0 < old_size < new_size. Edge cases, as in transparency-dev/merkle:
    old_size == new_size needs an empty proof and equal roots; old_size == 0 (every tree extends
    the empty one) needs an empty proof and old_root == MTH({}) = EMPTY_ROOT.
    """
    if not _well_formed((old_size, new_size), (old_root, new_root), proof) or old_size > new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    path = list(proof)
    if not path:  # RFC 9162 §2.1.4.2 step 1
        return False
    if (old_size & (old_size - 1)) == 0:  # old tree is a perfect subtree: its root starts the path
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:  # climb to the first level where the old tree's right edge is a left child
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


# --- Reference definitions (RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1), over a list of leaf hashes ---


def reference_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) with the leaves already hashed."""
    n = len(leaf_hashes)
    if n <= 1:
        return leaf_hashes[0] if n else EMPTY_ROOT
    k = _split(n)
    return node_hash(reference_root(leaf_hashes[:k]), reference_root(leaf_hashes[k:]))


def reference_inclusion(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n])."""
    n = len(leaf_hashes)
    if not 0 <= index < n:
        raise ValueError("index out of range")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return reference_inclusion(index, leaf_hashes[:k]) + [reference_root(leaf_hashes[k:])]
    return reference_inclusion(index - k, leaf_hashes[k:]) + [reference_root(leaf_hashes[:k])]


def reference_consistency(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) for 0 < m < n; empty for m == 0 or m == n."""
    if not 0 <= old_size <= len(leaf_hashes):
        raise ValueError("old size out of range")
    if old_size in (0, len(leaf_hashes)):
        return []

    def subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
        n = len(d)
        if m == n:
            return [] if b else [reference_root(d)]
        k = _split(n)
        if m <= k:
            return subproof(m, d[:k], b) + [reference_root(d[k:])]
        return subproof(m - k, d[k:], False) + [reference_root(d[:k])]

    return subproof(old_size, leaf_hashes, True)
