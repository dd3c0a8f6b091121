"""A projection's rows in memory between batches, and how a batch's changes are written.

Handlers get and put plain dicts (codec columns as live values, see :class:`projections.store.Table`).
The runner keeps one cache per projection across batches, holding exactly what its last committed
batch left in the database: it drops the cache when the tracking row shows a position it did not
commit itself (another runner went ahead) or when a batch fails, and :meth:`RowCache.changes`
forgets rows a handler got but did not put (it may have changed them in place; the database has
the truth). :meth:`RowCache.peek` is the read-only get: the row stays cached.

``complete`` means the cache started on empty tables (a rebuild), so a row it neither holds nor
let go of does not exist — no query needed to find that out. Rows it lets go of (trimmed to bound
memory, or forgotten) leave the hash of their key behind: a key with such a hash is looked up in
the database (a hash collision costs one query, nothing else), any other key is known to be new.
So a rebuild creates its millionth row as cheaply as its first.

Writing, per table, in key order (stable lock order for concurrent batches): rows the cache knows
to be new — it looked for them and found none, or it is complete and never held them — are
inserted plainly (PostgreSQL: ``COPY``; the server does a third less work per row than for an
upsert, which matters when the database shares the cores with the rebuild); the others are
upserted (SQLite: ``executemany``; PostgreSQL: one ``INSERT … SELECT FROM unnest`` of column
arrays with binary parameters).
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Sequence

from projections.store import Cursor, Table

#: One table's changed rows: new ones (inserted) and ones that may exist (upserted), stored values.
Changes = tuple[Table, list[Sequence[Any]], list[Sequence[Any]]]


class RowCache:
    def __init__(self, cur: Cursor | None, tables: Sequence[Table], *, complete: bool = False):
        self.cur = cur
        self.tables = {t.name: t for t in tables}
        self.complete = complete
        self.position: int | None = None  # tracking position the cached rows belong to
        self._rows: dict[str, dict[tuple[Any, ...], dict[str, Any] | None]] = {t.name: {} for t in tables}
        self._dirty: dict[str, set[tuple[Any, ...]]] = {t.name: set() for t in tables}
        self._new: dict[str, set[tuple[Any, ...]]] = {t.name: set() for t in tables}  # not in the database
        self._borrowed: dict[str, set[tuple[Any, ...]]] = {t.name: set() for t in tables}
        self._let_go: dict[str, set[int]] = {t.name: set() for t in tables}  # key hashes, while complete
        self._key_of = {t.name: _key_function(t.key) for t in tables}

    def peek(self, table: str, *key: Any) -> dict[str, Any] | None:
        """The row, for reading only: a caller that changes it must :meth:`put` it."""
        row = self._rows[table].get(key, _MISSING)
        return self._missing(table, key) if row is _MISSING else row

    def get(self, table: str, *key: Any) -> dict[str, Any] | None:
        row = self._rows[table].get(key, _MISSING)
        if row is _MISSING:
            row = self._missing(table, key)
        if row is not None:
            self._borrowed[table].add(key)
        return row

    def _missing(self, table: str, key: tuple[Any, ...]) -> dict[str, Any] | None:
        """A row the cache does not hold: new, or read from the database."""
        if self.complete and hash(key) not in self._let_go[table]:
            return None
        spec = self.tables[table]
        found = self.cur.execute(spec.select_by_key_statement(), key).fetchone()
        self._rows[table][key] = row = None if found is None else spec.row_from(found)
        return row

    def put(self, table: str, row: dict[str, Any]) -> None:
        key = self._key_of[table](row)
        rows = self._rows[table]
        before = rows.get(key, _MISSING)
        # New to the database: looked for and not found, or never there in a complete cache.
        if before is None or (before is _MISSING and self.complete and hash(key) not in self._let_go[table]):
            self._new[table].add(key)
        rows[key] = row
        self._dirty[table].add(key)

    def changes(self) -> list[Changes]:
        """The rows put since the last call, per table, encoded and in key order, ready for
        :meth:`write` (made before the write transaction, so that it is held only to write); rows
        got but not put are forgotten here (they may have been changed in place)."""
        changed = []
        for name, keys in self._dirty.items():
            cached, new = self._rows[name], self._new[name]
            for key in self._borrowed[name] - keys:
                del cached[key]
                if self.complete:
                    self._let_go[name].add(hash(key))
            self._borrowed[name].clear()
            if keys:
                spec = self.tables[name]
                ordered = _in_key_order(keys)
                inserted = [k for k in ordered if k in new] if new else []
                upserted = [k for k in ordered if k not in new] if new else ordered
                changed.append((spec, spec.values_of([cached[k] for k in inserted]),
                                spec.values_of([cached[k] for k in upserted])))
                keys.clear()
                new.clear()
        return changed

    @staticmethod
    def write(cur: Cursor, changed: list[Changes]) -> None:
        for spec, inserted, upserted in changed:
            if inserted:
                if cur.postgres and _bulk_typed(spec, inserted):
                    with cur.raw.copy(spec.copy_statement()) as copy:
                        for values in inserted:
                            copy.write_row(values)
                else:
                    cur.executemany(spec.insert_statement(), inserted)
            if not upserted:
                continue
            if cur.postgres and _bulk_typed(spec, upserted):
                # binary parameters: text arrays need no quoting (psycopg quotes text ones with regexes)
                cur.raw.execute(spec.bulk_upsert_statement().replace("?", "%b"),
                                [list(column) for column in zip(*upserted)])
            else:
                cur.executemany(spec.upsert_statement(), upserted)

    def size(self) -> int:
        return sum(len(rows) for rows in self._rows.values())

    def trim(self, max_rows: int) -> None:
        """Keep memory bounded: past ``max_rows``, let go of the oldest half (they stay in the database)."""
        if self.size() <= max_rows:
            return
        for name, rows in self._rows.items():
            let_go = self._let_go[name]
            for key in list(rows)[:len(rows) // 2 + 1]:
                if rows.pop(key) is not None:
                    let_go.add(hash(key))


_MISSING = object()


def _key_function(columns: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    if len(columns) == 1:
        (column,) = columns
        return lambda row: (row[column],)
    return operator.itemgetter(*columns)


def _bulk_typed(spec: Table, values: list[Sequence[Any]]) -> bool:
    """Do the values have the types the column arrays will be cast to (text: str, bigint: int)?
    Anything else is written by executemany, exactly as the database would convert it.
    (Column by column, the types collected by ``set(map(type, …))``: no Python loop per value.)"""
    return all(set(map(type, column)) <= allowed for column, allowed in zip(zip(*values), spec.bulk_types))


def _in_key_order(keys: set[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    # Writing rows in key order keeps PostgreSQL lock order stable across concurrent batches.
    try:
        return sorted(keys)  # any fixed order does; this one needs no tuple per key
    except TypeError:  # None or mixed types in keys
        return sorted(keys, key=_sortable)


def _sortable(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((v is None, "" if v is None else str(v)) for v in key)
