"""Reading the whole transparency log for verification, a page of leaves at a time.

Two drivers over the same pages (``PAGE`` leaves each, in leaf order, with the events whose log
positions fall between the page's first and last leaf — so an event that has no leaf shows up in
the page where its position belongs):

- ``verify_reference`` turns every row into a ``LeafRecord`` and runs the auditor-readable
  ``verifier.verify_log`` over all of them, with every stored interior node looked up as the
  replay meets it. Slow and simple.
- ``verify`` has each page read and checked by ``ledger.logpages`` (in C when the extension is
  built): leaf indexes, positions, leaf hashes, stored nodes; then joins the pages and checks the
  checkpoint roots. Only a page where something differs is turned into ``LeafRecord``s and handed
  to the reference replay, resumed at the page's first leaf — so the problem reported is, by
  construction, the one the reference finds.
"""

from __future__ import annotations

import dataclasses
import heapq
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Self
from uuid import UUID

from ledger.integrity.checkpoint import Checkpoint
from ledger.integrity.fastpath import PageReplay, PageSummary
from ledger.integrity.leaf import encode_leaf
from ledger.integrity.merkle import STORED_LEVEL, Frontier, frontier_addresses
from ledger.integrity.verifier import (
    LeafRecord,
    LogReplay,
    Problem,
    VerificationReport,
    verify_log,
)
from ledger.logpages import PageRead, PageSource

PAGE = 8192  # leaves per page: a power of two (pages stay aligned to whole subtrees)
READ_AHEAD = 3  # threads reading the next pages while one is joined (the C scan runs without the GIL)
QUEUED_PER_THREAD = 2  # pages asked for ahead per thread, so that a thread done with one finds the next waiting


class LogScan:
    def __init__(self, log: Any):
        self.log = log
        self.pg = log.pg
        self.page = PAGE  # tests use small pages
        self.source = PageSource.for_log(log, self.page)

    def close(self) -> None:
        self.source.close()

    # -- records for the reference replay ------------------------------------------------------
    def _page_records(self, first: int, after: int) -> tuple[list[LeafRecord], list[tuple]]:
        """The page's leaves, each with the event it should hash, merged in log order with the
        events in the page's range of positions that have no leaf (as leaf index -1)."""
        rows = self.source.fetch("SELECT l.leaf_index, l.leaf_hash, l.notification_id, e.originator_id, "
                                 "e.originator_version, e.topic, e.state FROM {leaves} l LEFT JOIN {events} e "
                                 "ON e.{nid} = l.notification_id WHERE l.leaf_index >= ? ORDER BY l.leaf_index "
                                 "LIMIT ?", (first, self.page))
        where, params = self.source.range(after, rows[-1][2] if len(rows) == self.page else None)
        # Events in the page's range of positions with no leaf in the page (a leaf elsewhere is out
        # of place: the replay reports it where it stands). Bounded by the page's leaves, so that no
        # index on notification_id is needed.
        unlogged = self.source.fetch(f"SELECT e.{{nid}}, e.originator_id, e.originator_version, e.topic, e.state "
                                     f"FROM {{events}} e WHERE {where} AND e.{{nid}} NOT IN (SELECT notification_id "
                                     f"FROM {{leaves}} WHERE leaf_index >= ? AND leaf_index < ?) ORDER BY e.{{nid}}",
                                     (*params, first, first + self.page))
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
            if len(rows) < self.page:
                return
            first, after = rows[-1][0] + 1, rows[-1][2]

    # -- verification --------------------------------------------------------------------------
    def verify_reference(self, checkpoints: Sequence[Checkpoint],
                         progress: Callable[[int], None] | None = None) -> VerificationReport:
        return _explain_unlogged(verify_log(self.leaf_records(), checkpoints, progress, StoredNodeRows(self.log)))

    def verify(self, checkpoints: Sequence[Checkpoint],
               progress: Callable[[int], None] | None = None) -> VerificationReport:
        start = LogReplay(checkpoints)
        problem = start.start()  # checkpoints of the empty tree
        if problem is not None:
            return VerificationReport(False, 0, problem, start.checked)
        return self._pages(PageReplay(start.pending[start.next_cp:], self.page), start.checked, progress)

    def _pages(self, replay: PageReplay, checked_before: int,
                    progress: Callable[[int], None] | None) -> VerificationReport:
        """Pages in order, read ``READ_AHEAD`` pages ahead by threads: the database produces and
        sends the next pages (and the C extension, which lets go of the GIL, hashes them) while
        this thread joins the current one."""
        size = self.log.size()  # what the read-ahead may expect; the pages themselves say where the log ends
        # A log of one page is read here: starting the threads would cost more.
        threads = READ_AHEAD if size > self.page else 0
        with PageReader(self.source, [c.size for c in replay.pending], threads, size) as pages:
            while not replay.finished:
                first = replay.size
                read = pages.get(first)
                if read.empty:
                    break
                summary = read.summary
                if summary is None or not replay.add(summary, self._stored_above(summary, read.stored_nodes)):
                    report = self._reference_page(replay, checked_before, first, self.source.position_before(first),
                                                  progress)
                    if report is not None:
                        return report
                if progress is not None:
                    progress(replay.size)
                if read.upto is None:
                    break
        resumed = self._resume(replay, checked_before)
        problem = resumed.finish()
        return VerificationReport(problem is None, replay.size, problem, resumed.checked)

    def _stored_above(self, page: PageSummary, read_with_page: dict[tuple[int, int], bytes] | None) -> dict:
        """The stored nodes that join a full page to the pages before it (read with the page, or now)."""
        if page.count != self.page:
            return {}
        if read_with_page is not None:
            return read_with_page
        return self.source.stored_nodes([r for r in PageReplay.stored_node_ranges(page.first, page.count)
                                         if r[0] > self.source.page_level])

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


class PageReader:
    """Pages of the log read ahead of their use by a few threads (pages are independent of each
    other: ``PageSource.summarise_next``), each thread with a connection of its own for the page's
    rows (other queries on PostgreSQL go through the ledger's pool). Pages are read ahead only up to
    the one that starts at or before the end of the log as it was when verification began (``size``):
    a page further on would be empty, and waiting for it is time lost. A page asked for is always
    read, so a log that grew meanwhile is still read to its end. Each thread has a page waiting
    beyond the one it reads: with only ``threads`` pages ahead of the one being joined, a thread
    that finished early (the first page of each thread is slower: its connection is new) waited
    idle until this thread had joined the slow page and asked for the next one."""

    def __init__(self, source: PageSource, checkpoint_sizes: list[int], threads: int, size: int):
        self.source = source
        self.sizes = checkpoint_sizes
        self.size = size
        self.threads = threads if source.shareable else 0  # an in-memory database: read here
        self.local = threading.local()
        self.opened: list[PageSource] = []
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(self.threads) if self.threads else None
        self.pending: dict[int, Future] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
        for source in self.opened:
            source.close()

    def get(self, first: int) -> PageRead:
        if self.pool is None:
            return self.source.summarise_next(first, self.sizes)
        for ahead in range(self.threads * QUEUED_PER_THREAD + 1):  # this page and the next ones
            start = first + ahead * self.source.page
            if ahead and start > self.size:
                break
            if start not in self.pending:
                self.pending[start] = self.pool.submit(self._read, start)
        for start in [s for s in self.pending if s < first]:  # skipped (a page replayed by the reference)
            self.pending.pop(start).cancel()
        return self.pending.pop(first).result()

    def _read(self, first: int) -> PageRead:
        source = getattr(self.local, "source", None)
        if source is None:  # each thread its own connection (PostgreSQL's other queries: the ledger's pool)
            source = self.local.source = self.source.sibling()
            with self.lock:
                self.opened.append(source)
        return source.summarise_next(first, self.sizes)


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
