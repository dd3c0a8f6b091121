"""Reading the transparency log a page of leaves at a time, for the fast path of verification.

A page is ``page`` leaves from a leaf index that is a multiple of ``page`` (so pages are whole
subtrees), together with the events whose log positions fall between the page's first and last
leaf — an event that has no leaf shows up in the page where its position belongs. A page
*checks out* when its leaves are exactly ``first``, ``first + 1``, …, each paired with the event
at its position, each stored leaf hash equal to the hash of that event, and every stored interior
node inside the page equal to the rebuilt one. ``summarise_next`` answers with the page's
summary, or None when anything differs: the caller then replays the page with the reference
verifier, which names the problem.

The inner loop runs in C when the extension ``ledger.integrity._scan`` is built (SQLite is read
through its C API on a read-only connection of ours; PostgreSQL through libpq on a connection of
ours, a page as two binary COPYs in one snapshot, read and hashed without the GIL), else in
Python (``fastpath.row_hashes``) over the same rows. Both compute the same hashes;
``tests/integrity/test_scan_extension.py`` compares them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ledger.integrity.fastpath import PageReplay, PageSummary, row_hashes, summarise_page

try:
    from ledger.integrity import _scan
except ImportError:  # not built (no compiler or headers): the Python path below does the same
    _scan = None

LEAVES_SQL = "SELECT leaf_index, notification_id, leaf_hash FROM {leaves} WHERE leaf_index >= ? " \
             "ORDER BY leaf_index LIMIT ?"
# The events of a page: after the position of leaf first - 1 (from the start for the first page;
# none at all past the end of the log), up to that of leaf first + page - 1 if there is one (then
# the page is full), else to the end of the log. So every page can be read on its own, in any order.
PAGE_EVENTS = "e.{nid} > COALESCE((SELECT notification_id FROM {leaves} WHERE leaf_index = ?), ?) AND e.{nid} <= " \
              "COALESCE((SELECT notification_id FROM {leaves} WHERE leaf_index = ?), 9223372036854775807)"
NO_EVENTS = 9223372036854775807
EVENTS_SQL = "SELECT {originator}, e.originator_version, e.topic, e.state, e.{nid} FROM {events} e WHERE " \
             f"{PAGE_EVENTS} ORDER BY e.{{nid}}"
# PostgreSQL in C: the same two queries as binary COPYs, in one read-only REPEATABLE READ
# transaction (``_scan.postgres_copy_page``). COPY takes no parameters: the bounds are integers,
# written into the statement by ``_with_integers``.
LEAVES_COPY = "COPY (SELECT leaf_index::int8, notification_id::int8, leaf_hash FROM {leaves} WHERE leaf_index >= ? " \
              "ORDER BY leaf_index LIMIT ?) TO STDOUT (FORMAT BINARY)"
EVENTS_COPY = "COPY (SELECT e.originator_id, e.originator_version::int8, e.topic, e.state, e.{nid}::int8 FROM " \
              f"{{events}} e WHERE {PAGE_EVENTS} ORDER BY e.{{nid}}) TO STDOUT (FORMAT BINARY)"
# With them, every stored node the page completes — inside it and joining it to the pages before
# (``PageReplay.stored_node_ranges`` of a full page) — so that the page needs no other query.
NODES_COPY = "COPY (SELECT level::int8, idx::int8, hash FROM {nodes} WHERE {ranges}) TO STDOUT (FORMAT BINARY)"


@dataclass(frozen=True)
class PageRead:
    """What the scan learned of one page."""

    summary: PageSummary | None  # None: something in the page differs (or it is empty)
    upto: int | None  # log position of the page's last leaf if the page is full, else None (last page)
    empty: bool  # no leaves and no events: the log ends before this page
    # the stored nodes the page completes, if read with it (PostgreSQL in C); not part of what it says
    stored_nodes: dict[tuple[int, int], bytes] | None = field(default=None, compare=False, repr=False)


class PageSource:
    """Raw rows of the log, a page at a time; ``spec`` says how to open another connection to the
    same database (each read-ahead thread has its own)."""

    def __init__(self, spec: dict[str, Any], fetch: Callable[[str, Sequence[Any]], list[tuple]] | None = None,
                 page: int = 8192):
        self.spec = spec
        self.pg = spec["pg"]
        self.page = page
        self._conn: Any = None  # our own connection, if we opened one
        self._native: Any = None  # PostgreSQL: the C scan's own libpq connection, opened on first use
        self._fetch_rows = fetch or self._connect()

    @classmethod
    def for_log(cls, log: Any, page: int) -> PageSource:
        datastore = log.recorder.datastore
        if log.pg:
            pool = datastore.pool
            # The pool's own connection arguments: the same server(s) and libpq options (ledger.pg_store).
            spec = {"pg": True, "connect": {k: v for k, v in pool.kwargs.items() if k != "row_factory"}}
        else:
            spec = {"pg": False, "path": datastore.pool.db_name}
        spec["tables"] = log.tables
        source = cls(spec, lambda sql, params: _pooled_fetch(log, sql, params), page)
        # PostgreSQL: the ledger's pool (opening a connection costs more than reading a small log);
        # SQLite: a read-only connection of our own, unless the database lives in this process only.
        return cls(spec, page=page) if source.shareable and not log.pg else source

    @property
    def shareable(self) -> bool:
        """Can another process open this database? (Not an in-memory SQLite database.)"""
        return self.pg or "memory" not in str(self.spec["path"])

    def _connect(self) -> Callable[[str, Sequence[Any]], list[tuple]]:
        if self.pg:
            import psycopg
            from psycopg.rows import tuple_row

            conn = self._conn = psycopg.connect(**self.spec["connect"], autocommit=True, row_factory=tuple_row)

            def fetch(sql: str, params: Sequence[Any]) -> list[tuple]:
                with conn.cursor(binary=True) as cur:
                    cur.execute(sql, params)
                    return cur.fetchall()
            return fetch
        import sqlite3

        conn = self._conn = sqlite3.connect(f"file:{self.spec['path']}?mode=ro", uri=True, check_same_thread=False)
        return lambda sql, params: conn.execute(sql, params).fetchall()

    def sibling(self) -> PageSource:
        """A source for another thread: its own connections (the C scan's, and SQLite's), the
        same pool for PostgreSQL's other queries."""
        return PageSource(self.spec, self._fetch_rows if self.pg else None, self.page)

    def close(self) -> None:
        self._native = None  # dropping the capsule closes the libpq connection
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _sql(self, sql: str) -> str:
        sql = sql.format(**self.spec["tables"])
        return sql.replace("?", "%s") if self.pg else sql

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self._fetch_rows(self._sql(sql), params)

    def range(self, after: int, upto: int | None) -> tuple[str, tuple]:
        """A WHERE clause for the events after position ``after``, up to ``upto`` (None: to the end)."""
        return ("e.{nid} > ? AND e.{nid} <= ?", (after, upto)) if upto is not None else ("e.{nid} > ?", (after,))

    def leaf_page(self, first: int) -> list[tuple]:
        return self.fetch(LEAVES_SQL, (first, self.page))

    def event_rows(self, first: int) -> list[tuple]:
        originator = "uuid_send(e.originator_id)" if self.pg else "e.originator_id"
        return self.fetch(EVENTS_SQL.replace("{originator}", originator), self._event_bounds(first))

    def _event_bounds(self, first: int) -> tuple[int, int, int]:
        return first - 1, 0 if first == 0 else NO_EVENTS, first + self.page - 1

    def position_before(self, first: int) -> int:
        """Log position of leaf ``first - 1`` (where a page starting at ``first`` takes over)."""
        rows = self.fetch("SELECT notification_id FROM {leaves} WHERE leaf_index = ?", (first - 1,)) if first else []
        return rows[0][0] if rows else 0

    def stored_nodes(self, ranges: list[tuple[int, int, int]]) -> dict[tuple[int, int], bytes]:
        if not ranges:
            return {}
        where = " OR ".join("(level = ? AND idx BETWEEN ? AND ?)" for _ in ranges)
        rows = self.fetch(f"SELECT level, idx, hash FROM {{nodes}} WHERE {where}", [v for r in ranges for v in r])
        return {(level, index): bytes(digest) for level, index, digest in rows}

    # -- one page ---------------------------------------------------------------------------------
    def summarise_next(self, first: int, checkpoint_sizes: Sequence[int]) -> PageRead:
        """Read and check the page of leaves from ``first`` (a multiple of the page size)."""
        if _scan is not None and self.shareable:
            (count, events, last, hashes), nodes = self._scan_page_in_c(first)
            summary = None if hashes is None else self._summarise_hashes(first, hashes, checkpoint_sizes, nodes)
            return PageRead(summary, last if count == self.page else None, not count and not events, nodes)
        leaves, events = self.leaf_page(first), self.event_rows(first)
        summary = self.summarise(first, leaves, events, checkpoint_sizes) if leaves or events else None
        return PageRead(summary, leaves[-1][1] if len(leaves) == self.page else None, not leaves and not events)

    def _scan_in_c(self, first: int) -> tuple[int, int, int | None, list[bytes] | None]:
        """(leaf rows, event rows, position of the last leaf, [leaf hashes] or None)."""
        return self._scan_page_in_c(first)[0]

    def _scan_page_in_c(self, first: int) -> tuple[tuple[int, int, int | None, list[bytes] | None],
                                                   dict[tuple[int, int], bytes] | None]:
        """What ``_scan_in_c`` says, and the stored nodes if they were read with the page."""
        if self.pg:
            if self._native is None:
                self._native = _scan.postgres_connect(_libpq_conninfo(self.spec["connect"]))
            ranges = PageReplay.stored_node_ranges(first, self.page)
            where = " OR ".join("(level = %s AND idx BETWEEN %s AND %s)" for _ in ranges) or "false"
            nodes_sql = self._sql(NODES_COPY.replace("{ranges}", where))
            return _scan.postgres_copy_page(self._native, first, self.page,
                                            _with_integers(self._sql(LEAVES_COPY), (first, self.page)),
                                            _with_integers(self._sql(EVENTS_COPY), self._event_bounds(first)),
                                            _with_integers(nodes_sql, [v for r in ranges for v in r]))
        return _scan.sqlite_page(str(self.spec["path"]), first, self.page, self._sql(LEAVES_SQL),
                                 self._sql(EVENTS_SQL.replace("{originator}", "e.originator_id"))), None

    def summarise(self, first: int, leaves: list[tuple], events: list[tuple],
                  checkpoint_sizes: Sequence[int]) -> PageSummary | None:
        """The page's summary if its leaves are exactly ``first``, ``first + 1``, … each with its
        own event and the right hash, and the stored nodes inside it match; else None."""
        if not leaves or [leaf[0] for leaf in leaves] != list(range(first, first + len(leaves))):
            return None
        if [leaf[1] for leaf in leaves] != [event[4] for event in events]:
            return None  # a leaf without its event, or an event without a leaf
        try:
            hashes = row_hashes(events, hex_ids=not self.pg)
        except (ValueError, TypeError, struct.error):
            return None  # a malformed stored event: the reference names it
        if hashes != [bytes(leaf[2]) for leaf in leaves]:
            return None
        return self._summarise_hashes(first, hashes, checkpoint_sizes)

    def _summarise_hashes(self, first: int, hashes: list[bytes], checkpoint_sizes: Sequence[int],
                          nodes: dict[tuple[int, int], bytes] | None = None) -> PageSummary | None:
        if nodes is None:
            nodes = self.stored_nodes([r for r in PageReplay.stored_node_ranges(first, len(hashes))
                                       if r[0] <= self.page_level])
        return summarise_page(first, hashes, nodes, checkpoint_sizes)

    @property
    def page_level(self) -> int:
        return self.page.bit_length() - 1


def _pooled_fetch(log: Any, sql: str, params: Sequence[Any]) -> list[tuple]:
    if log.pg:
        from psycopg.rows import tuple_row

        with log.recorder.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row, binary=True) as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    with log.cursor() as cur:
        cur.execute(sql, params)
        return [tuple(row) for row in cur.fetchall()]


def _with_integers(sql: str, values: Sequence[int]) -> str:
    """``sql`` with its ``%s`` placeholders replaced by integers (COPY takes no parameters)."""
    if not all(type(v) is int for v in values):
        raise TypeError("only integers are written into a COPY statement")
    return sql % tuple(values)


SCAN_APPLICATION_NAME = "caseledger-verify"  # how the scan's own sessions show in pg_stat_activity


def _libpq_conninfo(connect: dict[str, Any]) -> str:
    """The pool's connection arguments as a libpq connection string (psycopg-only arguments dropped)."""
    from psycopg.conninfo import make_conninfo

    libpq = {k: v for k, v in connect.items() if isinstance(v, (str, int)) and k != "autocommit"}
    return make_conninfo("", **{**libpq, "application_name": SCAN_APPLICATION_NAME})
