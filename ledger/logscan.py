"""Reading the whole transparency log for verification, a page of leaves at a time.

Two drivers over the same pages (``PAGE`` leaves each, in leaf order, with the events whose log
positions fall between the page's first and last leaf — so an event that has no leaf shows up in
the page where its position belongs):

- ``verify_reference`` turns every row into a ``LeafRecord`` and runs the auditor-readable
  ``verifier.verify_log`` over all of them, with every stored interior node looked up as the
  replay meets it. Slow and simple.
- ``verify`` reads raw rows, hashes the page with ``fastpath``, and compares whole lists: leaf
  indexes, positions, leaf hashes, stored nodes and checkpoint roots. Only a page where something
  differs is turned into ``LeafRecord``s and handed to the reference replay, resumed at the
  page's first leaf — so the problem reported is, by construction, the one the reference finds.
"""

from __future__ import annotations

import dataclasses
import heapq
import struct
import warnings
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterator, Sequence
from uuid import UUID

from ledger.integrity.checkpoint import Checkpoint
from ledger.integrity.fastpath import PageReplay, PageSummary, row_hashes, summarise_page
from ledger.integrity.leaf import encode_leaf
from ledger.integrity.merkle import STORED_LEVEL, Frontier, frontier_addresses
from ledger.integrity.verifier import LeafRecord, LogReplay, Problem, VerificationReport, verify_log

PAGE = 8192  # leaves per page: a power of two (pages stay aligned to whole subtrees)
PAGES_PER_TASK = 2  # pages a worker process summarises per task
PARALLEL_FROM = 32 * PAGE  # fewer leaves (262,144) than this: one process (starting workers costs more)


class PageSource:
    """Raw rows of the log, a page at a time; picklable as a ``spec`` so worker processes can open
    their own connection to the same database."""

    def __init__(self, spec: dict[str, Any], fetch: Callable[[str, Sequence[Any]], list[tuple]] | None = None):
        self.spec = spec
        self.pg = spec["pg"]
        self._conn: Any = None  # our own connection, if we opened one
        self._fetch_rows = fetch or self._connect()

    @classmethod
    def for_log(cls, log: Any) -> PageSource:
        datastore = log.recorder.datastore
        if log.pg:
            pool = datastore.pool
            spec = {"pg": True, "connect": {k: pool.kwargs[k] for k in ("dbname", "host", "port", "user", "password")}}
        else:
            spec = {"pg": False, "path": datastore.pool.db_name}
        spec["tables"] = log.tables
        source = cls(spec, lambda sql, params: _pooled_fetch(log, sql, params))
        # A connection of our own returns plain tuples (the pool's rows are dicts / sqlite3.Row).
        return cls(spec) if source.shareable else source

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

        conn = self._conn = sqlite3.connect(f"file:{self.spec['path']}?mode=ro", uri=True)
        return lambda sql, params: conn.execute(sql, params).fetchall()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        sql = sql.format(**self.spec["tables"])
        return self._fetch_rows(sql.replace("?", "%s") if self.pg else sql, params)

    def _range(self, after: int, upto: int | None) -> tuple[str, tuple]:
        return ("e.{nid} > ?", (after,)) if upto is None else ("e.{nid} > ? AND e.{nid} <= ?", (after, upto))

    def leaf_page(self, first: int) -> list[tuple]:
        return self.fetch("SELECT leaf_index, notification_id, leaf_hash FROM {leaves} WHERE leaf_index >= ? "
                          "ORDER BY leaf_index LIMIT ?", (first, PAGE))

    def event_rows(self, after: int, upto: int | None) -> list[tuple]:
        where, params = self._range(after, upto)
        originator = "uuid_send(e.originator_id)" if self.pg else "e.originator_id"
        return self.fetch(f"SELECT {originator}, e.originator_version, e.topic, e.state, e.{{nid}} FROM {{events}} e "
                          f"WHERE {where} ORDER BY e.{{nid}}", params)

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
        inside = [r for r in PageReplay.stored_node_ranges(first, len(leaves)) if r[0] < _PAGE_LEVEL() + 1]
        return summarise_page(first, hashes, self.stored_nodes(inside), checkpoint_sizes)


def _PAGE_LEVEL() -> int:  # noqa: N802 - PAGE may be changed (tests use small pages)
    return PAGE.bit_length() - 1


def _pooled_fetch(log: Any, sql: str, params: Sequence[Any]) -> list[tuple]:
    if log.pg:
        from psycopg.rows import tuple_row

        with log.recorder.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row, binary=True) as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    with log.cursor() as cur:
        cur.execute(sql, params)
        return [tuple(row) for row in cur.fetchall()]


_SOURCES: dict[str, PageSource] = {}


def _summarise_pages(spec: dict[str, Any], page: int, first: int, count: int,
                     checkpoint_sizes: list[int]) -> list[PageSummary | None]:
    """Worker process: summarise ``count`` pages from leaf ``first``; stops at a page that does not
    check out (None) or at the log's last page."""
    global PAGE
    PAGE = page
    key = repr(sorted(spec.items()))
    if key not in _SOURCES:  # one connection per worker process
        _SOURCES[key] = PageSource(spec)
    source = _SOURCES[key]
    after = source.position_before(first)
    out: list[PageSummary | None] = []
    for start in range(first, first + count * PAGE, PAGE):
        leaves = source.leaf_page(start)
        upto = _upto(leaves, position_at=1)
        out.append(source.summarise(start, leaves, source.event_rows(after, upto), checkpoint_sizes))
        if out[-1] is None or upto is None:
            break
        after = upto
    return out


class LogScan:
    def __init__(self, log: Any):
        self.log = log
        self.pg = log.pg
        self.source = PageSource.for_log(log)

    def close(self) -> None:
        self.source.close()

    # -- records for the reference replay ------------------------------------------------------
    def _page_records(self, first: int, after: int) -> tuple[list[LeafRecord], list[tuple]]:
        """The page's leaves, each with the event it should hash, merged in log order with the
        events in the page's range of positions that have no leaf (as leaf index -1)."""
        rows = self.source.fetch("SELECT l.leaf_index, l.leaf_hash, l.notification_id, e.originator_id, "
                                 "e.originator_version, e.topic, e.state FROM {leaves} l LEFT JOIN {events} e "
                                 "ON e.{nid} = l.notification_id WHERE l.leaf_index >= ? ORDER BY l.leaf_index "
                                 "LIMIT ?", (first, PAGE))
        where, params = self.source._range(after, _upto(rows, position_at=2))
        unlogged = self.source.fetch(f"SELECT e.{{nid}}, e.originator_id, e.originator_version, e.topic, e.state "
                                     f"FROM {{events}} e WHERE {where} AND NOT EXISTS (SELECT 1 FROM {{leaves}} l "
                                     f"WHERE l.notification_id = e.{{nid}}) ORDER BY e.{{nid}}", params)
        logged = [LeafRecord(index, bytes(digest), None if originator is None else _leaf_bytes(originator, version,
                                                                                               topic, state),
                             position, _label(originator, version, topic) if originator is not None else "missing event")
                  for index, digest, position, originator, version, topic, state in rows]
        orphans = [LeafRecord(-1, b"", _leaf_bytes(originator, version, topic, state), position,
                              f"{_label(originator, version, topic)} (no leaf)")
                   for position, originator, version, topic, state in unlogged]
        return list(heapq.merge(logged, orphans, key=lambda r: r.position)), rows

    def leaf_records(self) -> Iterator[LeafRecord]:
        """Every leaf with the event it should hash, in log order, events without a leaf merged in."""
        first, after = 0, 0
        while True:
            records, rows = self._page_records(first, after)
            yield from records
            if len(rows) < PAGE:
                return
            first, after = rows[-1][0] + 1, rows[-1][2]

    # -- verification --------------------------------------------------------------------------
    def verify_reference(self, checkpoints: Sequence[Checkpoint],
                         progress: Callable[[int], None] | None = None) -> VerificationReport:
        return _explain_unlogged(verify_log(self.leaf_records(), checkpoints, progress, StoredNodeRows(self.log)))

    def verify(self, checkpoints: Sequence[Checkpoint], progress: Callable[[int], None] | None = None,
               workers: int | None = None) -> VerificationReport:
        start = LogReplay(checkpoints)
        problem = start.start()  # checkpoints of the empty tree
        if problem is not None:
            return VerificationReport(False, 0, problem, start.checked)
        replay = PageReplay(start.pending[start.next_cp:], PAGE)
        workers = workers or 1
        size = self.log.size()
        if workers > 1 and size >= PARALLEL_FROM and self.source.shareable:
            try:
                report = self._parallel(replay, start.checked, size, workers, progress)
            except (BrokenProcessPool, OSError) as e:  # e.g. a main script without a __main__ guard
                warnings.warn(f"verifying in one process: worker processes failed ({e})", RuntimeWarning, stacklevel=2)
                report = None
            if report is not None:
                return report
        return self._sequential(replay, start.checked, progress)

    def _sequential(self, replay: PageReplay, checked_before: int,
                    progress: Callable[[int], None] | None) -> VerificationReport:
        first = replay.size
        after = self.source.position_before(first)
        while not replay.finished:
            leaves = self.source.leaf_page(first)
            upto = _upto(leaves, position_at=1)
            events = self.source.event_rows(after, upto)
            if not leaves and not events:
                break
            summary = self.source.summarise(first, leaves, events, replay.checkpoint_sizes(first, len(leaves)))
            if summary is None or not replay.add(summary, self._stored_above(summary)):
                report = self._reference_page(replay, checked_before, first, after, progress)
                if report is not None:
                    return report
            if progress is not None:
                progress(replay.size)
            if upto is None:
                break
            first, after = replay.size, upto
        resumed = self._resume(replay, checked_before)
        problem = resumed.finish()
        return VerificationReport(problem is None, replay.size, problem, resumed.checked)

    def _parallel(self, replay: PageReplay, checked_before: int, size: int, workers: int,
                  progress: Callable[[int], None] | None) -> VerificationReport | None:
        """Pages summarised by worker processes, joined here in order. Returns the report if a page
        had a problem, else None (the caller finishes sequentially from where this stopped)."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        sizes = [c.size for c in replay.pending]
        span = PAGE * PAGES_PER_TASK
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            tasks = [pool.submit(_summarise_pages, self.source.spec, PAGE, first, PAGES_PER_TASK, sizes)
                     for first in range(0, size - size % PAGE, span)]
            for task in tasks:
                for summary in task.result():
                    if summary is None or not replay.add(summary, self._stored_above(summary)):
                        pool.shutdown(cancel_futures=True)
                        first = replay.size
                        report = self._reference_page(replay, checked_before, first,
                                                      self.source.position_before(first), progress)
                        return report  # None: the reference accepted it; go on sequentially
                    if progress is not None:
                        progress(replay.size)
                    if replay.finished:
                        return None
        return None

    def _stored_above(self, page: PageSummary) -> dict[tuple[int, int], bytes]:
        """The stored nodes that join a full page to the pages before it."""
        if page.count != PAGE:
            return {}
        return self.source.stored_nodes([r for r in PageReplay.stored_node_ranges(page.first, page.count)
                                         if r[0] > _PAGE_LEVEL()])

    def _resume(self, replay: PageReplay, checked_before: int) -> LogReplay:
        edge = dict(zip(frontier_addresses(replay.size), replay.frontier))
        frontier = Frontier.load(replay.size, lambda level, index: edge[(level, index)])
        return LogReplay(replay.remaining_checkpoints(), StoredNodeRows(self.log), frontier=frontier,
                         checked=checked_before + replay.checkpoints_checked)

    def _reference_page(self, replay: PageReplay, checked_before: int, first: int, after: int,
                        progress: Callable[[int], None] | None) -> VerificationReport | None:
        """Replay one page with the reference verifier: its first problem, or None (then the
        fast path was stricter than the rules, e.g. an id stored in another spelling, and the
        scan carries on from the reference's state)."""
        resumed = self._resume(replay, checked_before)
        records, _ = self._page_records(first, after)
        for record in records:
            problem = resumed.add(record)
            if problem is not None:
                if progress is not None:
                    progress(resumed.frontier.size)
                return _explain_unlogged(VerificationReport(False, resumed.frontier.size, problem, resumed.checked))
        replay.replayed(resumed.frontier.size, resumed.frontier.hashes, resumed.next_cp)
        return None


class StoredNodeRows:
    """``verifier.StoredNodes`` on the ``merkle_nodes`` table, one query per node."""

    def __init__(self, log: Any):
        self.log = log

    def get(self, level: int, index: int) -> bytes | None:
        rows = self.log.rows("SELECT hash FROM {nodes} WHERE level = ? AND idx = ?", (level, index))
        return bytes(rows[0][0]) if rows else None

    def beyond(self, size: int) -> tuple[int, int] | None:
        rows = self.log.rows("SELECT level, idx FROM {nodes} WHERE level >= ? AND ((idx + 1) << level) > ? "
                             "ORDER BY ((idx + 1) << level), level LIMIT 1", (STORED_LEVEL, size))
        return (rows[0][0], rows[0][1]) if rows else None


def _upto(rows: list[tuple], position_at: int) -> int | None:
    """Last log position a page covers: its last leaf's, or no limit for the last page."""
    return rows[-1][position_at] if len(rows) == PAGE else None


def _uuid(originator: Any) -> UUID:
    return originator if isinstance(originator, UUID) else UUID(str(originator))


def _leaf_bytes(originator: Any, version: int, topic: str, state: bytes) -> bytes:
    try:
        return encode_leaf(_uuid(originator), version, topic, bytes(state))
    except (ValueError, TypeError, AttributeError):
        return b""  # not encodable: the replay reports a malformed leaf


def _label(originator: Any, version: Any, topic: Any) -> str:
    try:
        originator = _uuid(originator)
    except ValueError:
        pass
    return f"{str(topic).rsplit(':', 1)[-1]} {originator} v{version}"


def _explain_unlogged(report: VerificationReport) -> VerificationReport:
    problem = report.first_problem
    if problem is not None and problem.leaf_index == -1:  # an event that was never logged
        problem = Problem(report.leaves, problem.position, problem.label,
                          f"the event at log position {problem.position} has no leaf: it was written "
                          "outside the ledger")
        report = dataclasses.replace(report, first_problem=problem)
    return report
