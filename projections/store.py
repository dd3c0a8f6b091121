"""Where read models live: tables in the ledger's own database, written one batch per transaction.

Read models sit next to the events — the same SQLite file, or the same PostgreSQL schema (the
``POSTGRES_SCHEMA`` the ledger uses) — so that a batch of view changes and the projection's
tracking position commit in ONE transaction. The connection details come from the ledger's
eventsourcing environment (built from ``ledger.settings.Settings``), so there is no second
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple
from uuid import UUID

from ledger.pgurl import LIBPQ_OPTIONS, connect_kwargs, is_postgres
from ledger.sqlaccess import SCHEMA_LOCK
from projections.decode import log_id, recent_id
from projections.stalls import CREATE_STALL_TABLE

TRACKING_TABLE = "projection_tracking"

# sqlite3 binds an int, float or str parameter as it is, but looks for an adapter for any other
# value, None included: a registry lookup, then two attribute lookups that each make (and drop) an
# AttributeError with its formatted message, ~1.5k instructions per NULL — and a read model's rows
# are full of NULLs (a rebuild binds hundreds of thousands). With an adapter registered for None
# the first lookup finds it: ``{}.get`` is a C function that answers None, which binds as NULL, as
# before. (Process-wide, and the same for every connection: None is still written as NULL.)
sqlite3.register_adapter(type(None), {}.get)

#: SQLite page cache of the read-model connection (the default is 2 MiB).
SQLITE_CACHE_KIB = 64 * 1024
#: WAL pages after which a commit of this connection checkpoints: SQLite's default, and while a
#: rebuild runs (:meth:`ViewDatabase.checkpoints_spaced`) 16 times as many (a WAL of ≈ 64 MiB).
SQLITE_AUTOCHECKPOINT_PAGES, SQLITE_REBUILD_CHECKPOINT_PAGES = 1000, 16 * 1000


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
    def bulk_types(self) -> tuple[frozenset[type], ...]:
        """Per column, the Python types a bulk write sends as they are (TEXT: str, BIGINT: int, NULL)."""
        return tuple(frozenset({str if kind.upper() == "TEXT" else int, type(None)}) for _, kind in self.columns)

    @functools.cached_property
    def encoders(self) -> tuple[tuple[int, Callable[[Any], str]], ...]:
        """(column index, encode) of the codec columns."""
        return tuple((self.column_names.index(name), codec.encode) for name, codec in self.codecs)

    @functools.cached_property
    def _stored(self) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
        """A row's stored values in one call: ``(row["a"], enc(row["b"]) if … is not None else None, …)``,
        written out for this table's columns (a rebuild makes a tuple per changed row: with the
        codec columns encoded in the same expression, not by a pass over the rows per codec)."""
        encoders = dict(self.encoders)
        names = {f"_e{index}": encode for index, encode in encoders.items()}
        parts = [f"row[{name!r}]" if index not in encoders else
                 f"(None if (v{index} := row[{name!r}]) is None else _e{index}(v{index}))"
                 for index, name in enumerate(self.column_names)]
        return eval(f"lambda row: ({', '.join(parts)},)", names)  # column names from code, quoted by repr

    def values_of(self, rows: Sequence[dict[str, Any]]) -> list[Sequence[Any]]:
        """The stored values of rows as handlers see them, in column order (codec columns encoded;
        a column a row lacks is NULL)."""
        if not self.encoders:
            try:
                values: list[Sequence[Any]] = list(map(self._pick, rows))
            except KeyError:
                return [tuple(map(row.get, self.column_names)) for row in rows]
            if len(self.column_names) == 1:  # itemgetter of one name gives the value itself
                values = [(value,) for value in values]
            return values
        stored = self._stored
        try:
            return list(map(stored, rows))
        except KeyError:  # a row without some column: that column is NULL
            return [stored({name: row.get(name) for name in self.column_names}) for row in rows]

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

    def insert_statement(self) -> str:
        """The insert of a row known to be new (no conflict handling: a clash is a bug, and fails)."""
        names = self.column_names
        return f"INSERT INTO {self.name} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"

    def copy_statement(self) -> str:
        """PostgreSQL's ``COPY`` of new rows, in column order."""
        return f"COPY {self.name} ({', '.join(self.column_names)}) FROM STDIN"

    def bulk_upsert_statement(self) -> str:
        """The upsert of many rows at once, one array parameter per column (PostgreSQL)."""
        names = self.column_names
        others = [n for n in names if n not in self.key]
        update = ", ".join(f"{n} = excluded.{n}" for n in others) or f"{self.key[0]} = excluded.{self.key[0]}"
        arrays = ", ".join(f"?::{'bigint' if kind.upper() == 'BIGINT' else 'text'}[]" for _, kind in self.columns)
        return (f"INSERT INTO {self.name} ({', '.join(names)}) SELECT * FROM unnest({arrays}) "
                f"ON CONFLICT ({', '.join(self.key)}) DO UPDATE SET {update}")

    def delete_statement(self) -> str:
        return f"DELETE FROM {self.name} WHERE {' AND '.join(f'{k} = ?' for k in self.key)}"

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
        self.postgres = is_postgres(self.env)
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

            # The ledger's own hosts, ports and libpq options (a primary and its standbys: the
            # read models follow the primary after a failover, as the ledger's pool does).
            conn = psycopg.connect(**connect_kwargs(self.env), autocommit=True,
                                   connect_timeout=int(float(self.env.get("POSTGRES_CONNECT_TIMEOUT") or 10)))
            # Unqualified table names resolve to the ledger's schema, next to its events.
            conn.execute("SELECT set_config('search_path', %s, false)", (f'"{self.schema}"',))
            # As on SQLite below: a read-model batch a crash takes back takes its tracking position
            # with it and is redone, so its commit need not wait for the WAL flush. Our session only;
            # the ledger's own commits stay synchronous.
            conn.execute("SET synchronous_commit = off")
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

    @contextmanager
    def checkpoints_spaced(self) -> Iterator[None]:
        """SQLite: checkpoint the WAL 16 times less often meanwhile (a rebuild). Each batch's commit
        rewrites pages all over the read models' B-trees (random keys), so with SQLite's default
        nearly every commit checkpointed — copying those pages into the database file and syncing
        it, ≈ a tenth of a 100k-event rebuild — and the next batch dirtied the same pages again.
        Spaced out, a page rewritten by many batches is copied once per checkpoint; the WAL stays
        bounded (≈ 64 MiB). Nothing about what is committed changes. PostgreSQL: nothing to do."""
        if self.postgres:
            yield
            return
        with self.lock:
            self.connection.execute(f"PRAGMA wal_autocheckpoint={SQLITE_REBUILD_CHECKPOINT_PAGES}")
        try:
            yield
        finally:
            with self.lock:
                if self._conn is not None:  # a new connection starts with the default anyway
                    self._conn.execute(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES}")

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
            # A case's events share one id object: most are found by recent_id, without a call of log_id.
            return [(position, recent_id(oid) or log_id(oid), version, topic, state)
                    for position, oid, version, topic, state in rows]

    # -- schema ----------------------------------------------------------------------------------
    def create_tables(self, tables: Sequence[Table], *, indexes: bool = True) -> None:
        """Create what is missing (always the tracking and stall tables); ``indexes=False``: the
        tables only (with their primary keys)."""
        with self.transaction() as cur:
            if self.postgres:
                cur.execute(SCHEMA_LOCK)  # processes starting at once on a new database: one creates, the others wait
            cur.execute(f"CREATE TABLE IF NOT EXISTS {TRACKING_TABLE} (name TEXT PRIMARY KEY, "
                        "position BIGINT NOT NULL, version BIGINT NOT NULL)")
            cur.execute(CREATE_STALL_TABLE)
            for table in tables:
                for statement in table.create_statements()[:None if indexes else 1]:
                    cur.execute(statement)

    def drop_tables(self, cur: Cursor, tables: Sequence[Table]) -> None:
        for table in tables:
            cur.execute(f"DROP TABLE IF EXISTS {table.name}")


_ENV_KEYS = ("PERSISTENCE_MODULE", "SQLITE_DBNAME", "SQLITE_LOCK_TIMEOUT", "POSTGRES_HOST", "POSTGRES_PORT",
             "POSTGRES_DBNAME", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_SCHEMA", "POSTGRES_CONNECT_TIMEOUT",
             LIBPQ_OPTIONS)
