"""The projection runtime: follow the ledger's notification log, exactly once, resumable after a crash.

Why our own runtime and not eventsourcing's ``ProjectionRunner``: eventsourcing 9.5's
``Projection``/``TrackingRecorder`` record one tracking position per *event* in the view's own
recorder, and ``ProjectionRunner`` constructs the application itself from a class and an
environment (``CaseLedger`` needs its policy book and calendar). We want several read models in
the ledger's own database, written a *batch* at a time. So we keep eventsourcing's idea —
the view change and the tracking position are committed atomically — and implement it as:

1. read up to ``batch_size`` notifications after the lowest tracked position (one query for
   plain tuples, ``ViewDatabase.notifications``; ids may have gaps on PostgreSQL, so we track the
   *last processed notification id*, never a count), decode each once (``projections.decode``:
   the same event objects as the mapper's, without its per-object JSON hooks; personal parts
   stay sealed);
2. per projection: apply the events after its position in memory, then, in ONE short write
   transaction, lock its tracking row (``SELECT … FOR UPDATE`` on PostgreSQL, ``BEGIN
   IMMEDIATE`` on SQLite) and check that it still shows the position the work started from:
   if so, upsert the changed rows, set the position to the batch's last id, commit; if another
   runner (e.g. the API process catching up while ``projections run`` is running) moved it
   meanwhile, throw the work away and redo it from the new position — so no event is ever
   applied twice (``ProjectionRunner._apply`` says why that is sound). The write lock (on
   SQLite: the database's) is held only while writing, not while handlers run.

Between batches each projection keeps the rows it touched in memory (``RowCache``), valid only
while its tracking row still shows the position it committed itself, so a rebuild reads almost
nothing back and writes each batch's changed rows with one statement per table. A rebuild
pauses the cyclic garbage collector (:func:`collections_paused`), writes its rows only every
many batches in one process (``projections.rebuilding``), and may split the read models over
processes (``projections.parallel``).

A crash before the commit loses the whole batch's work *and* its position, so it is redone;
after the commit both are there. That is exactly-once. An event a read model cannot apply (its
handler fails, or the database refuses its rows) stalls that read model alone: the events before
it are committed, the stall (position, topic, reason) is recorded durably and every runner skips
the read model until it is rebuilt; the others go on (``projections.stalls``). Nothing is skipped.

Following new events: on PostgreSQL we ``LISTEN`` on the channel the ledger's recorder
``NOTIFY``s on every insert (falling back to a timeout so a missed notify costs at most one
poll interval); on SQLite we poll.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from projections import stalls
from projections.decode import EventDecoder
from projections.failures import ProjectionFailed
from projections.following import Waiter, close_quietly, collections_paused
from projections.parallel import catch_up_in_processes
from projections.projection import Projection, events_by_class
from projections.rebuilding import rebuild_in_memory
from projections.rowcache import CACHED_ROWS, Changes, RowCache
from projections.stalls import ProjectionStalled, Stall
from projections.store import TRACKING_TABLE, Cursor, ViewDatabase

__all__ = ["Projection", "ProjectionFailed", "ProjectionRunner", "ProjectionStalled", "Stall", "Status"]
LOG = logging.getLogger("caseledger.projections")
#: Pauses while the database is away: the first, doubling up to the last (seconds).
RECONNECT_FIRST, RECONNECT_MAX = 0.5, 10.0


@dataclass(frozen=True)
class Status:
    name: str
    position: int
    head: int
    stall: Stall | None = None

    @property
    def lag(self) -> int:
        """Notification ids between the head of the log and the projection (an upper bound on events)."""
        return max(self.head - self.position, 0)

    @property
    def state(self) -> str:
        return "running" if self.stall is None else "stalled"


class ProjectionRunner:
    def __init__(self, ledger: Any, projections: Sequence[Projection], db: ViewDatabase | None = None, *,
                 batch_size: int = 500):
        self.ledger = ledger
        self.projections = list(projections)
        self.db = db or ViewDatabase.for_ledger(ledger)
        self.batch_size = batch_size
        self._ready = False
        #: While rebuilding: tables get their secondary indexes only once they are full (one sorted
        #: build instead of an index update per row; a runner that finds them missing creates them).
        self.building = False
        self.decoder = EventDecoder(ledger)
        self._caches: dict[str, RowCache] = {}  # per projection: rows as of the position it committed
        #: Called with each stall this runner records (e.g. to print it); it is logged anyway.
        self.on_stall: Callable[[Stall], None] | None = None

    # -- setup ---------------------------------------------------------------------------------
    def ensure_tables(self) -> None:
        if self._ready:
            return
        self.db.create_tables([t for p in self.projections for t in p.tables], indexes=not self.building)
        with self.db.transaction() as cur:
            for p in self.projections:
                # ON CONFLICT: another process (the API, a second runner) may register it at the same time.
                cur.execute(f"INSERT INTO {TRACKING_TABLE} (name, position, version) VALUES (?, 0, ?) "
                            "ON CONFLICT (name) DO NOTHING", (p.name, p.version))
                found = cur.execute(f"SELECT version FROM {TRACKING_TABLE} WHERE name = ?", (p.name,)).fetchone()
                if found[0] != p.version:
                    raise RuntimeError(f"read model {p.name!r} was built by version {found[0]} of its projection, "
                                       f"this is version {p.version}: run 'caseledger projections rebuild {p.name}'")
        self._ready = True

    def positions(self) -> dict[str, int]:
        return self._state()[0]

    def stalls(self) -> dict[str, Stall]:
        """The stalled read models of this runner (recorded by any process), by name."""
        return self._state()[1]

    def _state(self) -> tuple[dict[str, int], dict[str, Stall]]:
        """Positions and stalls, read in one snapshot."""
        self.ensure_tables()
        with self.db.reading() as cur:
            rows = dict(cur.execute(f"SELECT name, position FROM {TRACKING_TABLE}").fetchall())
            stalled = stalls.load(cur, (p.name for p in self.projections))
        return {p.name: int(rows.get(p.name, 0)) for p in self.projections}, stalled

    def status(self) -> list[Status]:
        head = self.ledger.recorder.max_notification_id() or 0
        positions, stalled = self._state()
        return [Status(name, pos, head, stalled.get(name)) for name, pos in positions.items()]

    # -- processing ----------------------------------------------------------------------------
    def run_batch(self) -> int:
        """Process one batch for the read models that are not stalled; returns the number of
        notifications read (0 when caught up)."""
        positions, stalled = self._state()
        active = [p for p in self.projections if p.name not in stalled]
        if not active:
            return 0
        start = min(positions[p.name] for p in active)
        rows = self.db.notifications(self.ledger.recorder.events_table_name, start, self.batch_size)
        if not rows:
            return 0
        decoded = self.decoder.events(rows)
        by_class = events_by_class(decoded)
        last = rows[-1][0]
        for projection in active:
            if positions[projection.name] < last:
                try:
                    self._apply(projection, projection.relevant(decoded, by_class), start,
                                positions[projection.name], last)
                except Exception as error:  # noqa: BLE001 - sorted out below: a retry later, or a stall now
                    if stalls.is_transient(error):
                        raise
                    self._isolate(projection, decoded, error)
        return len(rows)

    def _isolate(self, projection: Projection, decoded: list[tuple[int, str, Any]], error: Exception) -> None:
        """The batch failed for ``projection``: commit what it can apply, and stall it at the first
        event it cannot, applied alone. The events before a handler's failure go in one transaction,
        then one event at a time (a database refusal does not say which event's rows it was)."""
        failed_at = error.position if isinstance(error, ProjectionFailed) else None
        pending = decoded
        while True:
            now = self._current_position(projection.name)
            pending = [item for item in pending if item[0] > (now or 0)]
            if now is None or not pending:
                return  # a rebuild is starting, or another runner applied the rest
            before = [item for item in pending if failed_at is not None and item[0] < failed_at]
            chunk = before or pending[:1]
            try:
                self._apply(projection, chunk, now, now, chunk[-1][0])
            except Exception as again:  # noqa: BLE001 - as in run_batch
                if stalls.is_transient(again):
                    raise
                if len(chunk) == 1:
                    self._stall(projection, chunk[0], again)
                    return
                failed_at = again.position if isinstance(again, ProjectionFailed) else None

    def _current_position(self, name: str) -> int | None:
        with self.db.reading() as cur:
            found = cur.execute(f"SELECT position FROM {TRACKING_TABLE} WHERE name = ?", (name,)).fetchone()
        return None if found is None else int(found[0])

    def _stall(self, projection: Projection, item: tuple[int, str, Any], error: Exception) -> None:
        """Record that ``projection`` stalls at ``item`` (unless it moved past it or was reset meanwhile)."""
        stall = Stall(projection.name, item[0], item[1], stalls.reason_of(error), stalls.now_stamp())
        self._caches.pop(projection.name, None)
        with self.db.transaction() as cur:
            now = self._locked_position(cur, projection.name)
            if now is None or now >= item[0]:
                return  # rebuilt meanwhile, or applied by a runner that could (another version)
            stalls.record(cur, stall)
        LOG.error("read model %s %s (applied up to %s); the other read models go on", stall.name, stall.describe(),
                  now)
        if self.on_stall:
            self.on_stall(stall)

    def _apply(self, projection: Projection, decoded: list[tuple[int, str, Any]], start: int, position: int,
               last: int) -> None:
        """Apply the events of the batch (all those after ``start`` up to ``last``) that come after
        ``position`` in memory; then, in one short write transaction, check that the position is
        still ``position``, write the changed rows and move it to ``last``.

        The work is done outside the write transaction so that the write lock (on SQLite: the whole
        database's) is held only while writing, and read models projected in parallel processes do
        not wait for each other's handlers. If another runner moved the position meanwhile, the work
        is thrown away and redone from there: rows read while applying (cache misses) are only used
        if nothing was committed to the read model since — its rows change only together with its
        position, and a read model at a given position is the same whoever built it.
        """
        while True:
            cache = self._caches.pop(projection.name, None)  # back only once the batch has committed
            if cache is None or cache.position != position:  # someone else moved it: start afresh
                cache = RowCache(None, projection.tables, complete=position == 0)
            with self.db.reading() as cur:
                cache.cur = cur
                # Skip what is already applied (by us earlier, or by another runner).
                projection.apply_batch(decoded if not decoded or decoded[0][0] > position else
                                       [item for item in decoded if item[0] > position], cache)
            now = self._commit(projection.name, cache.changes(), position, last)
            if now == position:
                break
            if now is None:  # its tracking row is gone (a rebuild is starting): register it again
                self._ready = False
                self.ensure_tables()
            position = now or 0
            if not start <= position < last:
                return  # another runner applied the whole batch, or a rebuild reset it: the next batch will do
        cache.cur, cache.position = None, last
        cache.trim(CACHED_ROWS)
        self._caches[projection.name] = cache

    def _commit(self, name: str, changed: list[Changes], expected: int, last: int) -> int | None:
        """In one short write transaction: if the read model's position is still ``expected``, write
        its ``changed`` rows and move the position to ``last``. Returns the position found (so
        ``expected`` when written; None if its tracking row is gone)."""
        with self.db.transaction() as cur:
            now = self._locked_position(cur, name)
            if now == expected:
                RowCache.write(cur, changed)
                cur.execute(f"UPDATE {TRACKING_TABLE} SET position = ? WHERE name = ?", (last, name))
        return now

    def _locked_position(self, cur: Cursor, name: str) -> int | None:
        lock = " FOR UPDATE" if self.db.postgres else ""
        found = cur.execute(f"SELECT position FROM {TRACKING_TABLE} WHERE name = ?{lock}", (name,)).fetchone()
        return int(found[0]) if found else None

    def catch_up(self, progress: Callable[[int], None] | None = None, *, head: int | None = None,
                 strict: bool = True) -> int:
        """Process until every read model that is not stalled has seen ``head`` (default: the head of
        the log now). ``strict``: then raise :class:`ProjectionStalled` if one of them is stalled —
        for callers that act on what they read (retention, SLA escalation, reports); the API's
        views and ``projections run`` pass False and serve or go on with the others."""
        if head is None:
            head = self.ledger.recorder.max_notification_id() or 0
        processed = 0
        while True:
            positions, stalled = self._state()
            if min((pos for name, pos in positions.items() if name not in stalled), default=head) >= head:
                break
            count = self.run_batch()
            if count == 0:
                break
            processed += count
            if progress:
                progress(count)
        if strict:
            self.raise_if_stalled()
        return processed

    def raise_if_stalled(self, names: Iterable[str] | None = None) -> None:
        """Raise :class:`ProjectionStalled` for the first stalled read model (of ``names``, default all)."""
        stalled = self.stalls()
        for p in self.projections:
            if p.name in stalled and (names is None or p.name in names):
                raise ProjectionStalled(stalled[p.name])

    def follow(self, stop: threading.Event, *, poll_seconds: float = 1.0, pause_between_batches: float = 0.0,
               on_batch: Callable[[int], None] | None = None) -> None:
        """Keep up with the log until ``stop`` is set. A database that goes away (a restart, a
        failover) is waited for with growing pauses and reconnected to: the process is not restarted."""
        waiter: Waiter | None = None
        pause = RECONNECT_FIRST
        try:
            while not stop.is_set():
                try:
                    waiter = waiter or Waiter(self.ledger, poll_seconds)
                    count = self.run_batch()
                    if count:
                        if on_batch:
                            on_batch(count)
                        if pause_between_batches:
                            stop.wait(pause_between_batches)
                    else:
                        waiter.wait(stop)
                    pause = RECONNECT_FIRST
                except Exception as error:  # noqa: BLE001 - only what may pass is waited out; the rest raises
                    if not stalls.is_transient(error):
                        raise
                    LOG.warning("database unavailable (%s: %s); retrying in %.1f s",
                                type(error).__name__, " ".join(str(error).split()), pause)
                    waiter = close_quietly(waiter, self.db)  # fresh connections after the pause
                    stop.wait(pause)
                    pause = min(pause * 2, RECONNECT_MAX)
        finally:
            close_quietly(waiter)

    def rebuild(self, names: Iterable[str] | None = None, progress: Callable[[int], None] | None = None, *,
                workers: int = 1) -> int:
        """Drop the named read models (default: all) and build them again from position 0, in up to
        ``workers`` processes (``projections.parallel``; 1: in this one)."""
        wanted = set(names) if names else {p.name for p in self.projections}
        unknown = wanted - {p.name for p in self.projections}
        if unknown:
            raise KeyError(f"unknown read model(s): {', '.join(sorted(unknown))}")
        chosen = [p for p in self.projections if p.name in wanted]
        for p in chosen:
            self._caches.pop(p.name, None)
        self.db.create_tables([])  # the tracking table, on a database no runner has used yet
        with self.db.transaction() as cur:
            self.db.drop_tables(cur, [t for p in chosen for t in p.tables])
            for p in chosen:
                cur.execute(f"DELETE FROM {TRACKING_TABLE} WHERE name = ?", (p.name,))
            stalls.clear(cur, [p.name for p in chosen])  # the repair: the fixed code gets its chance
        self._ready, self.building = False, True
        try:
            self.ensure_tables()
            if workers > 1 and len(chosen) > 1:
                head = self.ledger.recorder.max_notification_id() or 0
                processed = catch_up_in_processes(self, [p.name for p in chosen], head, workers, progress)
            else:
                with collections_paused(), self.db.checkpoints_spaced():
                    processed = rebuild_in_memory(self, chosen, progress)
                    processed += self.catch_up(progress, strict=False)  # read models it left to us
        finally:
            self.building = False
            self.db.create_tables([t for p in chosen for t in p.tables])  # the indexes
        processed += self.catch_up(progress, strict=False)  # whatever was appended meanwhile
        self.raise_if_stalled(wanted)  # still: the fix did not fix it
        return processed

    def digests(self) -> dict[str, str]:
        self.ensure_tables()
        return {p.name: p.digest(self.db) for p in self.projections}

    def close(self) -> None:
        self.db.close()
