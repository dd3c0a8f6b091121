"""Reading the transparency log for its public, hashes-only endpoints: signed tree heads, leaves by
index or hash, and C2SP tlog-tiles.

Everything here returns hashes and sizes, never event content. Proofs themselves are
:class:`ledger.transparency.TransparencyLog`'s; this module adds the reads they do not cover.

**Tiles** (c2sp.org/tlog-tiles, hash tiles of height 8): tile ``(L, N)`` holds the hashes of the
perfect subtrees of ``256**L`` leaves numbered ``N * 256 .. N * 256 + 255`` — node ``(8 L, i)`` of
our storage model (``ledger.integrity.merkle``): leaf hashes at level 0, stored ``merkle_nodes``
rows above (level 8 L >= STORED_LEVEL). A tile is *full* with 256 hashes, *partial* (``.p/W``)
with the first W < 256. ``N`` is written in 3-digit groups, all but the last prefixed with ``x``:
1234067 is ``x001/x234/067`` (:func:`tile_path`, :func:`parse_tile_path`, which accepts only that
canonical form).

**Leaf by hash.** ``merkle_leaves`` is keyed by leaf index; on PostgreSQL ``ledger.leafindex``
adds a hash index on ``leaf_hash`` when it can. Without one (SQLite, which keeps one B-tree per
commit on purpose, or a PostgreSQL role that may not create it) a lookup scans only the last
:data:`LEAF_HASH_SCAN` leaves of the tree, through the primary key: bounded work per request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ledger.integrity.merkle import HASH_SIZE
from ledger.transparency import LogError, NodeReader, TransparencyLog

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT  # 256 hashes, 8,192 bytes
MAX_TILE_LEVEL = 63
#: Leaves a lookup by hash examines when there is no index on ``leaf_hash`` (the newest ones).
LEAF_HASH_SCAN = 1 << 18
_MAX_GROUPS = 8  # 24 decimal digits: more than any tile index of a tree of < 2**64 leaves
_LEVEL = re.compile(r"0|[1-9][0-9]?")
_WIDTH = re.compile(r"[1-9][0-9]{0,2}")
_GROUP = re.compile(r"x[0-9]{3}")
_LAST = re.compile(r"[0-9]{3}")


class TilePathError(ValueError):
    """Not a tile path in tlog-tiles' canonical form."""


def tile_index_path(index: int) -> str:
    """``N`` as tlog-tiles writes it: 1234067 -> ``x001/x234/067``, 5 -> ``005`` (Go's ``pathN``)."""
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise TilePathError("a tile index is a non-negative int")
    path = f"{index % 1000:03d}"
    while index >= 1000:
        index //= 1000
        path = f"x{index % 1000:03d}/{path}"
    return path


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """``<L>/<N>[.p/<W>]``, the part of a tile's URL after ``tile/``."""
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= MAX_TILE_LEVEL:
        raise TilePathError(f"a tile level is 0 to {MAX_TILE_LEVEL}")
    if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= TILE_WIDTH:
        raise TilePathError(f"a tile is 1 to {TILE_WIDTH} hashes wide")
    partial = f".p/{width}" if width < TILE_WIDTH else ""
    return f"{level}/{tile_index_path(index)}{partial}"


def parse_tile_path(level: str, index_path: str) -> tuple[int, int, int]:
    """(level, index, width) from the two parts of ``tile/<L>/<N>[.p/<W>]``; exactly the
    canonical form :func:`tile_path` writes, anything else raises :class:`TilePathError`."""
    if not isinstance(level, str) or not _LEVEL.fullmatch(level) or int(level) > MAX_TILE_LEVEL:
        raise TilePathError(f"the level is a decimal 0 to {MAX_TILE_LEVEL} without leading zeros")
    parts = index_path.split("/") if isinstance(index_path, str) else []
    width = TILE_WIDTH
    if len(parts) >= 2 and parts[-2].endswith(".p"):
        if not _WIDTH.fullmatch(parts[-1]) or int(parts[-1]) >= TILE_WIDTH:
            raise TilePathError(f"a partial tile's width is a decimal 1 to {TILE_WIDTH - 1} without leading zeros")
        width = int(parts[-1])
        parts = [*parts[:-2], parts[-2][:-2]]
    if not 1 <= len(parts) <= _MAX_GROUPS or not _LAST.fullmatch(parts[-1]) \
            or not all(_GROUP.fullmatch(p) for p in parts[:-1]):
        raise TilePathError("the index is 3-digit groups, all but the last prefixed with x (e.g. x001/234)")
    index = 0
    for part in parts:
        index = index * 1000 + int(part.lstrip("x"))
    if tile_path(int(level), index, width) != f"{level}/{index_path}":  # e.g. x000/001 for 001
        raise TilePathError("the tile index is not in canonical form")
    return int(level), index, width


@dataclass(frozen=True)
class SignedHead:
    """A published checkpoint: its tree size and the signed note, verbatim."""

    size: int
    note: str


class LogProofs:
    """The reads behind the public log endpoints. ``leaf_hash_indexed``: whether ``merkle_leaves``
    has an index on ``leaf_hash`` (see ``ledger.leafindex``); lookups by hash are bounded without."""

    def __init__(self, log: TransparencyLog, *, leaf_hash_indexed: bool = False):
        self.log = log
        self.leaf_hash_indexed = leaf_hash_indexed

    def signed_head(self, size: int | None = None) -> SignedHead | None:
        """The latest published checkpoint, or the latest one of tree size ``size``; None if none."""
        if size is None:
            rows = self.log.rows("SELECT tree_size, note FROM {checkpoints} ORDER BY id DESC LIMIT 1")
        else:
            rows = self.log.rows("SELECT tree_size, note FROM {checkpoints} WHERE tree_size = ? "
                                 "ORDER BY id DESC LIMIT 1", (size,))
        return SignedHead(int(rows[0][0]), rows[0][1]) if rows else None

    def leaf_hash(self, index: int) -> bytes:
        rows = self.log.rows("SELECT leaf_hash FROM {leaves} WHERE leaf_index = ?", (index,))
        if not rows:
            raise LogError(f"the log has no leaf {index}")
        return bytes(rows[0][0])

    def scan_start(self, tree_size: int) -> int:
        """The first leaf a lookup by hash in a tree of ``tree_size`` leaves examines."""
        return 0 if self.leaf_hash_indexed else max(0, tree_size - LEAF_HASH_SCAN)

    def find_leaf(self, digest: bytes, tree_size: int) -> int | None:
        """The index of the leaf with hash ``digest`` among the first ``tree_size`` leaves (only the
        last :data:`LEAF_HASH_SCAN` of them without an index); None if it is not there."""
        if not isinstance(digest, bytes) or len(digest) != HASH_SIZE:
            raise LogError(f"a leaf hash is {HASH_SIZE} bytes")
        # No ORDER BY … LIMIT: it could tempt the planner to walk the primary key instead of the
        # hash index. Leaf hashes are unique anyway (a leaf encodes its event's identity).
        if self.leaf_hash_indexed:
            rows = self.log.rows("SELECT leaf_index FROM {leaves} WHERE leaf_hash = ? AND leaf_index < ?",
                                 (digest, tree_size))
        else:
            rows = self.log.rows("SELECT leaf_index FROM {leaves} WHERE leaf_index >= ? AND leaf_index < ? "
                                 "AND leaf_hash = ?", (self.scan_start(tree_size), tree_size, digest))
        return min(int(row[0]) for row in rows) if rows else None

    def tile(self, level: int, index: int, width: int, tree_size: int) -> bytes:
        """The hashes of tile (level, index), the first ``width`` of them, concatenated; LogError
        unless the tree of ``tree_size`` leaves has them all."""
        node_level, first = level * TILE_HEIGHT, index * TILE_WIDTH
        if not 1 <= width <= TILE_WIDTH or (first + width) << node_level > tree_size:
            raise LogError(f"tile {tile_path(level, index, width)} is not in the tree of size {tree_size}")
        if node_level == 0:
            rows = self.log.rows("SELECT leaf_index, leaf_hash FROM {leaves} WHERE leaf_index >= ? "
                                 "AND leaf_index < ? ORDER BY leaf_index", (first, first + width))
        else:
            rows = self.log.rows("SELECT idx, hash FROM {nodes} WHERE level = ? AND idx >= ? AND idx < ? "
                                 "ORDER BY idx", (node_level, first, first + width))
        found = {int(i): bytes(h) for i, h in rows}
        reader = NodeReader(self.log) if len(found) < width else None  # a gap: read it node by node
        hashes = [found[i] if i in found else reader(node_level, i) for i in range(first, first + width)]
        if any(len(h) != HASH_SIZE for h in hashes):
            raise LogError(f"tile {tile_path(level, index, width)} holds a malformed hash")
        return b"".join(hashes)
