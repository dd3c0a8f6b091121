"""A rebuild (in one process, or in each worker of a parallel one): every read model folds many
batches in memory before it writes.

Processing that follows the log (``ProjectionRunner.run_batch``) commits each read model's rows
and position after every batch it reads, so a crash loses at most one batch and the read models
stay fresh. A rebuild has nobody waiting for fresh rows, and committing after every batch costs
it a lot: each batch's commit rewrites the rows of every case the batch touched (a case's row is
written again at each batch that has one of its events), per read model one write transaction
per batch. So here each read model's rows stay in its :class:`RowCache` for
:data:`FLUSH_NOTIFICATIONS` notifications, and then each read model's changed rows and position
are written in one transaction.

Exactly-once is kept the way the runner keeps it: a read model's rows change only together with
its position, and the position is checked under lock at the flush — if another runner moved it
meanwhile (the API process catching up), this read model's unwritten work is thrown away. A read
model whose handler fails here is simply dropped from this loop, its unwritten work with it: the
runner's ordinary processing takes over from the position it has in the database, and finds,
commits up to and records the stall exactly as it would have (``ProjectionRunner._isolate``). A
read model whose rows the database refuses at a flush (a row it cannot store) is dropped the same
way. So this loop only ever decides *when* rows are written, never *what*.

A crash loses up to :data:`FLUSH_NOTIFICATIONS` notifications of work per read model (redone
from the last flush, as after a crash in a batch). Memory: the rows the window touched, on top of
the runner's bound on cached rows (trimmed after each flush).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from projections import stalls
from projections.projection import Projection, events_by_class
from projections.rowcache import CACHED_ROWS, RowCache

#: Notifications folded in memory between two writes of a rebuild's rows and positions.
FLUSH_NOTIFICATIONS = 50_000


def rebuild_in_memory(runner: Any, chosen: Sequence[Projection], progress: Callable[[int], None] | None = None,
                      *, head: int | None = None) -> int:
    """Fold the log into ``chosen`` read models (just emptied, at position 0) as above, up to
    ``head`` (default: the head of the log now); hand the caches to ``runner`` and return the
    notifications read. Read models dropped on the way are left where their last flush put them,
    for the runner's ordinary processing to finish. (``runner``: a ``projections.runtime.ProjectionRunner``,
    which imports this module.)"""
    if head is None:
        head = runner.ledger.recorder.max_notification_id() or 0
    caches = {p.name: RowCache(None, p.tables, complete=True) for p in chosen}
    committed = dict.fromkeys(caches, 0)  # each read model's position in the database
    active = list(chosen)
    table = runner.ledger.recorder.events_table_name
    after = unwritten = read = 0
    while active and after < head:
        rows = runner.db.notifications(table, after, runner.batch_size)
        if not rows:
            break
        decoded = runner.decoder.events(rows)
        by_class = events_by_class(decoded)
        with runner.db.reading() as cur:
            for projection in list(active):
                cache = caches[projection.name]
                cache.cur = cur  # rows trimmed away after a flush are read back
                try:
                    projection.apply_batch(projection.relevant(decoded, by_class), cache)
                except Exception as error:  # the ordinary processing redoes and isolates it
                    if stalls.is_transient(error):
                        raise
                    active.remove(projection)
                    del caches[projection.name]
        after = rows[-1][0]
        unwritten += len(rows)
        read += len(rows)
        if progress:
            progress(len(rows))
        if unwritten >= FLUSH_NOTIFICATIONS:
            active = _flush(runner, active, caches, committed, after)
            unwritten = 0
    if unwritten:
        active = _flush(runner, active, caches, committed, after)
    for projection in active:
        cache = caches[projection.name]
        cache.cur = None
        runner._caches[projection.name] = cache  # the runner goes on from these rows
    return read


def _flush(runner: Any, active: list[Projection], caches: dict[str, RowCache],
           committed: dict[str, int], position: int) -> list[Projection]:
    """Write each active read model's changed rows and move its position to ``position``, one
    short transaction per read model (on SQLite the write lock is the whole database's: the
    ledger's appends wait for one read model's rows at most, not for all of them); returns the read
    models still active — not those whose position someone else moved, nor those whose rows the
    database refused (nothing of theirs was written: the ordinary processing redoes them)."""
    kept = []
    for projection in active:
        cache = caches[projection.name]
        try:
            now = runner._commit(projection.name, cache.changes(), committed[projection.name], position)
        except Exception as error:  # rolled back
            if stalls.is_transient(error):
                raise
            del caches[projection.name]  # its rows are redone by the ordinary processing: free them now
            continue
        if now != committed[projection.name]:
            del caches[projection.name]  # another runner went ahead (or a rebuild reset it): our rows are void
            continue
        committed[projection.name] = cache.position = position
        cache.trim(CACHED_ROWS)
        kept.append(projection)
    return kept
