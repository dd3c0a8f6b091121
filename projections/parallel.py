"""Rebuilding read models in parallel processes: the read models split over the machine's cores.

A rebuild is CPU-bound Python (the handlers), so threads would not help. Each worker process
projects one group of read models with a runner of its own: it reads and decodes the log itself
and commits its rows together with the read model's own tracking row every many batches, exactly
as a rebuild in one process does (``projections.rebuilding``). No read model is projected by two
workers, and each one's rows are a function of the log alone, so exactly-once and the
determinism digests hold whatever process built what. Groups are balanced by each projection's
``rebuild_weight`` (its rough cost per event).

Workers are forked: they inherit the ledger (policies, calendar, mappers) and the projection
objects as they are, so nothing is rebuilt or pickled. A forked child must not use its parent's
database connections, so it opens its own (a new ``ViewDatabase``), never asks the ledger's
recorder anything (the head of the log is passed in), freezes the garbage collector before
anything else (no inherited connection is ever finalized in the child; collections stay off,
as in any rebuild) and leaves with ``os._exit`` (``multiprocessing`` does that), which runs none of the
parent's exit handlers.

This module is below :mod:`projections.runtime` (which calls it): it takes the runner and its
projections as they are handed in and builds each worker's runner with the parent's own class.
"""

from __future__ import annotations

import gc
import multiprocessing
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Sequence

from projections.failures import ProjectionFailed
from projections.rebuilding import rebuild_in_memory
from projections.store import ViewDatabase


def balanced_groups(projections: Sequence[Any], workers: int) -> list[list[Any]]:
    """At most ``workers`` non-empty groups of about equal total ``rebuild_weight`` (heaviest first,
    each into the lightest group so far)."""
    groups: list[list[Any]] = [[] for _ in range(max(1, min(workers, len(projections))))]
    for projection in sorted(projections, key=lambda p: -p.rebuild_weight):
        min(groups, key=lambda g: sum(p.rebuild_weight for p in g)).append(projection)
    return groups


def catch_up_in_processes(runner: Any, names: Sequence[str], head: int, workers: int,
                          progress: Callable[[int], None] | None = None) -> int:
    """Bring the named read models of ``runner`` (a ``ProjectionRunner``) up to ``head`` in up to ``workers`` processes.

    Returns the notifications read (per worker; they all read the same log). ``progress`` gets
    how far the slowest worker has come. A worker's failure is raised here once all have stopped
    (the read models of the others are complete; the failed one stays where it stopped).
    """
    groups = balanced_groups([p for p in runner.projections if p.name in names], workers)
    context = multiprocessing.get_context("fork")
    receivers: dict[Connection, int] = {}
    processes = []
    for index, group in enumerate(groups):
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=_work, args=(runner, [p.name for p in group], head, sender),
                                  name=f"rebuild-{'+'.join(p.name for p in group)}", daemon=True)
        process.start()
        sender.close()
        receivers[receiver] = index
        processes.append(process)
    read, reported, failures = [0] * len(groups), 0, []
    while receivers:
        for receiver in wait(list(receivers)):
            index = receivers[receiver]
            try:
                message = receiver.recv()
            except EOFError:
                message = ("error", f"the worker for {processes[index].name} died")
            if message[0] == "progress":
                read[index] += message[1]
                if progress and min(read) > reported:
                    progress(min(read) - reported)
                    reported = min(read)
                continue
            if message[0] == "failed":
                failures.append(ProjectionFailed(*message[1:4], RuntimeError(message[4])))
            elif message[0] == "error":
                failures.append(RuntimeError(message[1]))
            del receivers[receiver]
            receiver.close()
    for process in processes:
        process.join()
    if failures:
        raise failures[0]
    if progress and max(read) > reported:
        progress(max(read) - reported)
    return max(read, default=0)


def _work(parent: Any, names: list[str], head: int, sender: Connection) -> None:
    gc.freeze()  # everything inherited stays alive and unfinalized: the parent's connections are not ours
    gc.disable()  # and no collections at all (see runtime.collections_paused); the process ends with the rebuild
    db = ViewDatabase(parent.db.env)
    worker = type(parent)(parent.ledger, [p for p in parent.projections if p.name in names], db,
                          batch_size=parent.batch_size)
    worker.building = parent.building
    message: tuple[Any, ...] = ("done",)
    try:
        # Not strict: a read model that stalls is recorded as stalled by the worker, and the parent's
        # rebuild reports it once every worker is done.
        with db.checkpoints_spaced():  # as in a rebuild in one process (ViewDatabase.checkpoints_spaced)
            report = lambda count: sender.send(("progress", count))
            rebuild_in_memory(worker, worker.projections, report, head=head)  # rows written every many batches
            worker.catch_up(report, head=head, strict=False)  # the read models it left to the ordinary processing
    except ProjectionFailed as e:
        message = ("failed", e.projection, e.position, e.topic, f"{type(e.cause).__name__}: {e.cause}")
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises it
        message = ("error", f"{type(e).__name__}: {e}")
    finally:
        db.close()
    sender.send(message)
    sender.close()
