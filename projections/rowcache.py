"""A projection's rows in memory between batches, and how a batch's changes are written.

Handlers get and put plain dicts (codec columns as live values, see :class:`projections.store.Table`).
The runner keeps one cache per projection across batches, holding exactly what its last committed
batch left in the database: it drops the cache when the tracking row shows a position it did not
commit itself (another runner went ahead) or when a batch fails, and :meth:`RowCache.changes`
forgets rows a handler got but did not put (it may have changed them in place; the database has
the truth). :meth:`RowCache.peek` is the read-only get: the row stays cached.

``complete`` means the cache started on empty tables (a rebuild), so a row it neither holds nor
let go of does not exist — no query needed to find that out. Rows it lets go of (trimmed to bound
memory, or forgotten) leave a bit for the hash of their key behind (:class:`LetGo`, a bitmap of
fixed size, so memory stays bounded however long the log): a key whose bit is set is looked up in
the database (a key that only shares the bit costs one query, nothing else), any other key is
known to be new. So a rebuild creates its millionth row as cheaply as its first.

Writing, per table, in key order (stable lock order for concurrent batches): rows the cache knows
to be new — it looked for them and found none, or it is complete and never held them — are
inserted plainly (PostgreSQL: ``COPY``; the server does a third less work per row than for an
upsert, which matters when the database shares the cores with the rebuild); the others are
upserted (SQLite: ``executemany``; PostgreSQL: one ``INSERT … SELECT FROM unnest`` of column
arrays with binary parameters, when every value has its column's exact type — which
``projections.storable.check_rows`` finds out while checking that both databases can store them).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

from projections.storable import check_rows
from projections.store import Cursor, Table

#: Rows a projection keeps in memory between batches (per projection; beyond it, the oldest half go).
CACHED_ROWS = 100_000

#: One table's changes: rows new to it (inserted) and ones that may exist (upserted), as stored
#: values, and the keys of rows to delete.
Changes = tuple[Table, list[Sequence[Any]], list[Sequence[Any]], list[tuple[Any, ...]]]


class _TableRows:
    """One table's part of a cache (one lookup by table name per call, then attribute reads)."""

    __slots__ = ("borrowed", "deleted", "dirty", "key_of", "let_go", "new", "rows", "spec")

    def __init__(self, spec: Table):
        self.spec = spec
        self.rows: dict[tuple[Any, ...], dict[str, Any] | None] = {}
        self.dirty: set[tuple[Any, ...]] = set()
        self.new: set[tuple[Any, ...]] = set()  # put, and not in the database
        self.deleted: set[tuple[Any, ...]] = set()  # to delete from the database
        self.borrowed: set[tuple[Any, ...]] = set()  # got (maybe changed in place), put or not
        self.let_go = LetGo()  # keys of rows no longer held, while complete
        self.key_of = _key_function(spec.key)


class RowCache:
    def __init__(self, cur: Cursor | None, tables: Sequence[Table], *, complete: bool = False):
        self.cur = cur
        self.tables = {t.name: t for t in tables}
        self.complete = complete
        self.position: int | None = None  # tracking position the cached rows belong to
        self._by_name = {t.name: _TableRows(t) for t in tables}

    def peek(self, table: str, *key: Any) -> dict[str, Any] | None:
        """The row, for reading only: a caller that changes it must :meth:`put` it."""
        part = self._by_name[table]
        row = part.rows.get(key, _MISSING)
        return self._missing(part, key) if row is _MISSING else row

    def get(self, table: str, *key: Any) -> dict[str, Any] | None:
        part = self._by_name[table]
        row = part.rows.get(key, _MISSING)
        if row is _MISSING:
            row = self._missing(part, key)
        if row is not None:
            part.borrowed.add(key)
        return row

    def _missing(self, part: _TableRows, key: tuple[Any, ...]) -> dict[str, Any] | None:
        """A row the cache does not hold: new, or read from the database."""
        if self.complete and hash(key) not in part.let_go:
            return None
        found = self.cur.execute(part.spec.select_by_key_statement(), key).fetchone()
        part.rows[key] = row = None if found is None else part.spec.row_from(found)
        return row

    def put(self, table: str, row: dict[str, Any]) -> None:
        part = self._by_name[table]
        key = part.key_of(row)
        before = part.rows.get(key, _MISSING)
        if before is row:  # changed in place and put again (a case row, at each of its events): held, not deleted
            part.dirty.add(key)
            return
        if part.deleted and key in part.deleted:
            part.deleted.discard(key)  # deleted, then put again: it is still in the database
        # New to the database: looked for and not found, or never there in a complete cache.
        elif before is None or (before is _MISSING and self.complete and hash(key) not in part.let_go):
            part.new.add(key)
        part.rows[key] = row
        part.dirty.add(key)

    def delete(self, table: str, *key: Any) -> None:
        """The row is gone (whether or not it exists); a row put in this batch and never written
        costs the database nothing."""
        part = self._by_name[table]
        row = part.rows.get(key, _MISSING)
        if key in part.new:
            part.new.discard(key)
        elif row is not None and (row is not _MISSING or not self.complete or hash(key) in part.let_go):
            part.deleted.add(key)  # it is, or may be, in the database
        part.dirty.discard(key)
        part.borrowed.discard(key)
        part.rows[key] = None  # known not to exist

    def changes(self) -> list[Changes]:
        """The rows put since the last call, per table, encoded and in key order, ready for
        :meth:`write` (made before the write transaction, so that it is held only to write); rows
        got but not put are forgotten here (they may have been changed in place)."""
        changed = []
        for part in self._by_name.values():
            keys, cached, new = part.dirty, part.rows, part.new
            for key in part.borrowed - keys:
                del cached[key]
                if self.complete:
                    part.let_go.add(hash(key))
            part.borrowed.clear()
            if keys or part.deleted:
                ordered = _in_key_order(keys)
                if len(new) == len(keys):  # all new (a rebuild's usual batch): ``new`` is part of ``dirty``
                    inserted, upserted = ordered, []
                else:
                    inserted = [k for k in ordered if k in new] if new else []
                    upserted = [k for k in ordered if k not in new] if new else ordered
                changed.append((part.spec, part.spec.values_of([cached[k] for k in inserted]),
                                part.spec.values_of([cached[k] for k in upserted]), _in_key_order(part.deleted)))
                keys.clear()
                new.clear()
                part.deleted.clear()
        return changed

    @staticmethod
    def write(cur: Cursor, changed: list[Changes]) -> None:
        """Write a batch's changes; a value the two databases would not store alike raises
        :class:`~projections.storable.UnstorableValue` first, on both (the batch rolls back)."""
        for spec, inserted, upserted, deleted in changed:
            inserted_typed, upserted_typed = check_rows(spec, inserted), check_rows(spec, upserted)
            cur.executemany(spec.delete_statement(), deleted)  # first: a key may be deleted, then put again
            if inserted:
                if cur.postgres and inserted_typed:
                    with cur.raw.copy(spec.copy_statement()) as copy:
                        for values in inserted:
                            copy.write_row(values)
                else:
                    cur.executemany(spec.insert_statement(), inserted)
            if not upserted:
                continue
            if cur.postgres and upserted_typed:
                # binary parameters: text arrays need no quoting (psycopg quotes text ones with regexes)
                cur.raw.execute(spec.bulk_upsert_statement().replace("?", "%b"),
                                [list(column) for column in zip(*upserted)])
            else:
                cur.executemany(spec.upsert_statement(), upserted)

    def size(self) -> int:
        return sum(len(part.rows) for part in self._by_name.values())

    def trim(self, max_rows: int) -> None:
        """Keep memory bounded: past ``max_rows``, let go of the oldest half (they stay in the database)."""
        if self.size() <= max_rows:
            return
        for part in self._by_name.values():
            rows = part.rows
            for key in list(rows)[:len(rows) // 2 + 1]:
                if rows.pop(key) is not None:
                    part.let_go.add(hash(key))


_MISSING = object()


class LetGo:
    """Hashes of the keys of rows a complete cache let go of, as one bit each in a bitmap of
    :data:`LET_GO_BITS` bits, made on the first one (most tables never let go of a row). A set of
    the hashes grew with the log (a 10M-event rebuild lets go of millions of rows per table,
    ~50 bytes each); the bitmap stays 8 MiB. The price is false positives — a new key whose bit
    another key set — each one query that finds nothing: with a million keys let go, about one new
    key in 70; with five million, one in 14."""

    __slots__ = ("bits",)

    def __init__(self) -> None:
        self.bits: bytearray | None = None

    def add(self, hashed: int) -> None:
        if self.bits is None:
            self.bits = bytearray(LET_GO_BITS >> 3)
        bit = hashed & (LET_GO_BITS - 1)
        self.bits[bit >> 3] |= 1 << (bit & 7)

    def __contains__(self, hashed: int) -> bool:
        if self.bits is None:
            return False
        bit = hashed & (LET_GO_BITS - 1)
        return bool(self.bits[bit >> 3] & (1 << (bit & 7)))


#: Bits of a :class:`LetGo` bitmap (a power of two): 8 MiB.
LET_GO_BITS = 1 << 26


def _key_function(columns: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    if len(columns) == 1:
        (column,) = columns
        return lambda row: (row[column],)
    return operator.itemgetter(*columns)


def _in_key_order(keys: set[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    # Writing rows in key order keeps PostgreSQL lock order stable across concurrent batches.
    try:
        return sorted(keys)  # any fixed order does; this one needs no tuple per key
    except TypeError:  # None or mixed types in keys
        return sorted(keys, key=_sortable)


def _sortable(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((v is None, "" if v is None else str(v)) for v in key)
