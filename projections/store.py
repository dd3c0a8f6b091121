"""Where read models live: tables in the ledger's own database, written one batch per transaction.

Read models sit next to the events — the same SQLite file, or the same PostgreSQL schema (the
``POSTGRES_SCHEMA`` the ledger uses) — so that a batch of view changes and the projection's
tracking position commit in ONE transaction. The connection details come from the ledger's
eventsourcing environment (built from ``ledger.bootstrap.Settings``), so there is no second
configuration to get wrong.

We open our own connection instead of borrowing the ledger's pool: on SQLite a batch needs
``BEGIN IMMEDIATE`` (take the write lock up front, so a read-then-write batch never fails on a
lock upgrade), and on PostgreSQL a long rebuild should not hold one of the API's pooled
connections.

SQL is written once with ``?`` placeholders and the SQLite/PostgreSQL ``ON CONFLICT`` upsert
that both dialects share; :class:`ViewDatabase` converts placeholders for psycopg.
"""

from __future__ import annotations

import functools
import operator
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, NamedTuple, Sequence
from uuid import UUID

from projections.decode import log_id

TRACKING_TABLE = "projection_tracking"
#: SQLite page cache of the read-model connection (the default is 2 MiB).
SQLITE_CACHE_KIB = 64 * 1024


class Codec(NamedTuple):
    """How a TEXT column is held in memory: ``encode`` makes the stored text of the live value
    (when a batch is written), ``decode`` the live value of the stored text (when a row is read
    back). NULL stays NULL / None."""

    encode: Callable[[Any], str]
    decode: Callable[[str], Any]


@dataclass(frozen=True)
class Table:
    """A read-model table: its columns (``name SQLTYPE``), primary key and secondary indexes.

    Types are limited to TEXT and BIGINT (booleans as 0/1, times as fixed-width UTC ISO text) so
    both databases hold exactly the same values and the digest is portable. ``codecs`` name the
    TEXT columns that handlers see as live values (e.g. a dict for a JSON column): they are
    encoded once per batch in :meth:`RowCache.changes`, not on every event.
    """

    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()
    codecs: tuple[tuple[str, Codec], ...] = ()

    @functools.cached_property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @functools.cached_property
    def _pick(self) -> Callable[[dict[str, Any]], Any]:
        return operator.itemgetter(*self.column_names)

    @functools.cached_property
    def encoders(self) -> tuple[tuple[int, Callable[[Any], str]], ...]:
        """(column index, encode) of the codec columns."""
        return tuple((self.column_names.index(name), codec.encode) for name, codec in self.codecs)

    def values_of(self, rows: Sequence[dict[str, Any]]) -> list[Sequence[Any]]:
        """The stored values of rows as handlers see them, in column order (codec columns encoded;
        a column a row lacks is NULL)."""
        try:
            values: list[Sequence[Any]] = list(map(self._pick, rows))
            if len(self.column_names) == 1:  # itemgetter of one name gives the value itself
                values = [(value,) for value in values]
        except KeyError:
            values = [tuple(map(row.get, self.column_names)) for row in rows]
        if self.encoders:
            values = [list(row) for row in values]
            for index, encode in self.encoders:
                for row in values:
                    if row[index] is not None:
                        row[index] = encode(row[index])
        return values

    def row_from(self, values: Sequence[Any]) -> dict[str, Any]:
        """A stored row as handlers see it (codec columns decoded)."""
        row = dict(zip(self.column_names, values))
        for name, codec in self.codecs:
            if row[name] is not None:
                row[name] = codec.decode(row[name])
        return row

    def create_statements(self) -> list[str]:
        cols = ", ".join(f"{name} {kind}" for name, kind in self.columns)
        statements = [f"CREATE TABLE IF NOT EXISTS {self.name} ({cols}, PRIMARY KEY ({', '.join(self.key)}))"]
        for index in self.indexes:
            statements.append(f"CREATE INDEX IF NOT EXISTS ix_{self.name}_{'_'.join(index)} "
                              f"ON {self.name} ({', '.join(index)})")
        return statements

    def upsert_statement(self) -> str:
        names = self.column_names
        others = [n for n in names if n not in self.key]
        update = ", ".join(f"{n} = excluded.{n}" for n in others) or f"{self.key[0]} = excluded.{self.key[0]}"
        return (f"INSERT INTO {self.name} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)}) "
                f"ON CONFLICT ({', '.join(self.key)}) DO UPDATE SET {update}")

    def bulk_upsert_statement(self) -> str:
        """The upsert of many rows at once, one array parameter per column (PostgreSQL)."""
        names = self.column_names
        others = [n for n in names if n not in self.key]
        update = ", ".join(f"{n} = excluded.{n}" for n in others) or f"{self.key[0]} = excluded.{self.key[0]}"
        arrays = ", ".join(f"?::{'bigint' if kind.upper() == 'BIGINT' else 'text'}[]" for _, kind in self.columns)
        return (f"INSERT INTO {self.name} ({', '.join(names)}) SELECT * FROM unnest({arrays}) "
                f"ON CONFLICT ({', '.join(self.key)}) DO UPDATE SET {update}")

    def select_by_key_statement(self) -> str:
        where = " AND ".join(f"{k} = ?" for k in self.key)
        return f"SELECT {', '.join(self.column_names)} FROM {self.name} WHERE {where}"


class Cursor:
    """A thin cursor that accepts ``?`` placeholders on both databases and returns plain tuples."""

    def __init__(self, raw: Any, postgres: bool):
        self.raw, self.postgres = raw, postgres

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        self.raw.execute(self._sql(sql), tuple(params))
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.raw.executemany(self._sql(sql), rows)  # lists or tuples: both drivers take either

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.raw.fetchall()]

    def fetchone(self) -> tuple[Any, ...] | None:
        row = self.raw.fetchone()
        return None if row is None else tuple(row)


class ViewDatabase:
    """One connection to the ledger's database for read models, guarded by a lock (thread-safe)."""

    def __init__(self, env: Mapping[str, str]):
        self.env = dict(env)
        self.postgres = self.env.get("PERSISTENCE_MODULE", "") == "eventsourcing.postgres"
        self.schema = (self.env.get("POSTGRES_SCHEMA") or "public") if self.postgres else ""
        self.lock = threading.RLock()
        self._conn: Any = None

    @classmethod
    def for_ledger(cls, ledger: Any) -> ViewDatabase:
        return cls({key: ledger.env.get(key) or "" for key in _ENV_KEYS})

    # -- connections -------------------------------------------------------------------------
    def _connect(self) -> Any:
        if self.postgres:
            import psycopg

            conn = psycopg.connect(
                host=self.env.get("POSTGRES_HOST") or "127.0.0.1", port=int(self.env.get("POSTGRES_PORT") or 5432),
                dbname=self.env.get("POSTGRES_DBNAME") or "postgres", user=self.env.get("POSTGRES_USER") or "postgres",
                password=self.env.get("POSTGRES_PASSWORD") or None,
                connect_timeout=int(float(self.env.get("POSTGRES_CONNECT_TIMEOUT") or 10)), autocommit=True)
            # Unqualified table names resolve to the ledger's schema, next to its events.
            conn.execute("SELECT set_config('search_path', %s, false)", (f'"{self.schema}"',))
            return conn
        conn = sqlite3.connect(self.env["SQLITE_DBNAME"], isolation_level=None, check_same_thread=False,
                               timeout=float(self.env.get("SQLITE_LOCK_TIMEOUT") or 10))
        conn.execute("PRAGMA journal_mode=WAL")
        # Read models are derived data, committed with their tracking position: a batch that a power
        # cut takes back (NORMAL syncs the WAL at checkpoints, not at every commit) takes its position
        # with it and is redone — exactly once still holds. Our connection only; the ledger's are FULL.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")  # a rebuild's upserts hit random pages
        return conn

    @property
    def connection(self) -> Any:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """A write transaction: everything in it commits together, or nothing does."""
        with self.lock:
            conn = self.connection
            if self.postgres:
                with conn.transaction():
                    yield Cursor(conn.cursor(), True)
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield Cursor(conn.cursor(), False)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def reading(self) -> Iterator[Cursor]:
        """A read-only snapshot (one transaction, so multi-statement reads agree)."""
        with self.lock:
            conn = self.connection
            if self.postgres:
                with conn.transaction(force_rollback=True):
                    yield Cursor(conn.cursor(), True)
                return
            conn.execute("BEGIN")
            try:
                yield Cursor(conn.cursor(), False)
            finally:
                conn.execute("ROLLBACK")

    def close(self) -> None:
        with self.lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def notifications(self, events_table: str, after: int, limit: int) -> list[tuple[int, UUID, int, str, bytes]]:
        """Up to ``limit`` stored events after log position ``after``, as (position, originator id,
        version, topic, state) tuples: what ``select_notifications`` returns, without building a
        ``Notification`` object per event."""
        with self.lock:
            conn = self.connection
            if self.postgres:
                with conn.cursor(binary=True) as cur:  # binary: states as bytes, no hex
                    cur.execute(f'SELECT notification_id, originator_id::text, originator_version, topic, state FROM '
                                f'"{events_table}" WHERE notification_id > %s ORDER BY notification_id LIMIT %s',
                                (after, limit))
                    rows = cur.fetchall()
            else:
                rows = conn.execute(f"SELECT rowid, originator_id, originator_version, topic, state FROM {events_table} "
                                    "WHERE rowid > ? ORDER BY rowid LIMIT ?", (after, limit)).fetchall()
            return [(position, log_id(oid), version, topic, state) for position, oid, version, topic, state in rows]

    # -- schema ----------------------------------------------------------------------------------
    def create_tables(self, tables: Sequence[Table]) -> None:
        with self.transaction() as cur:
            cur.execute(f"CREATE TABLE IF NOT EXISTS {TRACKING_TABLE} (name TEXT PRIMARY KEY, "
                        "position BIGINT NOT NULL, version BIGINT NOT NULL)")
            for table in tables:
                for statement in table.create_statements():
                    cur.execute(statement)

    def drop_tables(self, cur: Cursor, tables: Sequence[Table]) -> None:
        for table in tables:
            cur.execute(f"DROP TABLE IF EXISTS {table.name}")


_ENV_KEYS = ("PERSISTENCE_MODULE", "SQLITE_DBNAME", "SQLITE_LOCK_TIMEOUT", "POSTGRES_HOST", "POSTGRES_PORT",
             "POSTGRES_DBNAME", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_SCHEMA", "POSTGRES_CONNECT_TIMEOUT")


class RowCache:
    """A projection's rows, read once and changed in memory; :meth:`changes` and :meth:`write` write
    the changed ones.

    Handlers get and put plain dicts (codec columns as live values, see :class:`Table`). The
    runner keeps one cache per projection across batches, holding exactly what its last committed
    batch left in the database: it drops the cache when the tracking row shows a position it did
    not commit itself (another runner went ahead) or when a batch fails, and :meth:`changes` forgets
    rows a handler got but did not put (it may have changed them in place; the database has the
    truth). :meth:`peek` is the read-only get: the row stays cached.

    ``complete`` means the cache started on empty tables (a rebuild), so a row it neither holds
    nor let go of does not exist — no query needed to find that out. Rows it lets go of (trimmed
    to bound memory, or forgotten) leave the hash of their key behind: a key with such a hash is
    looked up in the database (a hash collision costs one query, nothing else), any other key is
    known to be new. So a rebuild creates its millionth row as cheaply as its first.

    Writing: per table, one statement for all the batch's changed rows, in key order (stable lock
    order for concurrent batches): ``executemany`` on SQLite, one ``INSERT … SELECT FROM unnest``
    of column arrays on PostgreSQL.
    """

    def __init__(self, cur: Cursor | None, tables: Sequence[Table], *, complete: bool = False):
        self.cur = cur
        self.tables = {t.name: t for t in tables}
        self.complete = complete
        self.position: int | None = None  # tracking position the cached rows belong to
        self._rows: dict[str, dict[tuple[Any, ...], dict[str, Any] | None]] = {t.name: {} for t in tables}
        self._dirty: dict[str, set[tuple[Any, ...]]] = {t.name: set() for t in tables}
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
        self._rows[table][key] = row
        self._dirty[table].add(key)

    def changes(self) -> list[tuple[Table, list[Sequence[Any]]]]:
        """The rows put since the last call, per table, encoded and in key order, ready for
        :meth:`write` (made before the write transaction, so that it is held only to write); rows
        got but not put are forgotten here (they may have been changed in place)."""
        changed = []
        for name, keys in self._dirty.items():
            cached = self._rows[name]
            for key in self._borrowed[name] - keys:
                del cached[key]
                if self.complete:
                    self._let_go[name].add(hash(key))
            self._borrowed[name].clear()
            if keys:
                changed.append((self.tables[name], self.tables[name].values_of([cached[k] for k in _in_key_order(keys)])))
                keys.clear()
        return changed

    @staticmethod
    def write(cur: Cursor, changed: list[tuple[Table, list[Sequence[Any]]]]) -> None:
        for spec, values in changed:
            if cur.postgres and _bulk_typed(spec, values):
                # binary parameters: text arrays need no quoting (psycopg quotes text ones with regexes)
                cur.raw.execute(spec.bulk_upsert_statement().replace("?", "%b"), [list(column) for column in zip(*values)])
            else:
                cur.executemany(spec.upsert_statement(), values)

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


def _bulk_typed(spec: Table, values: list[list[Any]]) -> bool:
    """Do the values have the types the column arrays will be cast to (text: str, bigint: int)?
    Anything else is written by executemany, exactly as the database would convert it."""
    kinds = [str if kind.upper() == "TEXT" else int for _, kind in spec.columns]
    return all(v is None or (type(v) is kind) for row in values for v, kind in zip(row, kinds))


def _in_key_order(keys: set[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    # Writing rows in key order keeps PostgreSQL lock order stable across concurrent batches.
    try:
        return sorted(keys)  # any fixed order does; this one needs no tuple per key
    except TypeError:  # None or mixed types in keys
        return sorted(keys, key=_sortable)


def _sortable(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((v is None, "" if v is None else str(v)) for v in key)
