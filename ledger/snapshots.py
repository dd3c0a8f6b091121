"""Snapshots of aggregates: a cache that spares replaying a long history, never a record.

eventsourcing's snapshotting (``Application.snapshotting_intervals``): after a save that brings
an aggregate to a version divisible by ``CASELEDGER_SNAPSHOT_EVERY``, the application replays it
to that version and stores the state in the ``snapshots`` table; a later load starts from the
newest snapshot and applies only the events after it. What the ledger adds:

- **A snapshot never changes what a replay shows.** A snapshot is used only if it was taken by the
  same code that would replay the events now: each one carries a fingerprint of the sources of the
  project packages the aggregate's class and its bases come from (``code_fingerprint``: for every
  aggregate, all of ``domain/``). After a deployment that changes how an
  aggregate folds its events, old snapshots are passed over and the aggregate is replayed from its
  first event (new snapshots follow). A snapshot that cannot be read at all is passed over too.
  ``tests/snapshots`` checks snapshot + tail == full replay for random histories on both backends.
- **Taking a snapshot never fails a command.** It happens after the command's transaction has
  committed; if it fails (a lost connection, a full disk), the error is logged and the command's
  answer stands: the next multiple of N tries again.
- **The Merkle log covers events, not snapshots.** Snapshots are derived data in a table of their
  own (not append-only, not in the notification log, not exported); ``caseledger verify`` checks
  the events, and says that it did not check snapshots. Deleting every snapshot is always safe.
- Aggregates hold no personal data (it lives only in events' sealed personal parts), so a snapshot
  needs no encryption and survives crypto-shredding harmlessly.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import Any, Iterable

from eventsourcing.application import (
    AggregateNotFoundError,
    Repository,
    project_aggregate,
)
from eventsourcing.domain import CanMutateProtocol, Snapshot
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import TopicError, get_topic, resolve_topic

log = logging.getLogger(__name__)

#: The key of the code fingerprint inside a snapshot's state (removed again before it is used).
CODE_KEY = "__code__"
#: Packages whose code a deployment does not change (besides the standard library).
NOT_OURS = frozenset({"eventsourcing", "builtins"})
#: What ``verify`` says about snapshots.
NOT_COVERED = "snapshots (a cache of aggregate state, table `snapshots`) are not covered by the log and were not checked"


@lru_cache(maxsize=None)
def code_fingerprint(cls: type) -> str:
    """A hash of every source file of the project's packages that define ``cls`` or its bases (for an
    aggregate: all of ``domain/``), so it changes whenever anything the aggregate's event handlers
    might call changes — helpers in other modules of the package included. Read from the files, so
    every process of one deployment computes the same value."""
    digest = hashlib.sha256(get_topic(cls).encode())
    packages = sorted({klass.__module__.split(".")[0] for klass in cls.__mro__})
    for name in packages:
        root = _project_package(name)
        if root is None:
            continue  # the standard library, eventsourcing: not ours, pinned by the installation
        for path in sorted(root.rglob("*.py")):
            digest.update(path.relative_to(root.parent).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:32]


def _project_package(name: str) -> Path | None:
    """The folder of one of the project's own packages (``domain``), or None for the standard
    library and eventsourcing — whose code is pinned by the installation, not by a deployment."""
    if name in NOT_OURS or name in sys.stdlib_module_names:
        return None
    file = getattr(sys.modules.get(name), "__file__", None)
    if not file or Path(file).name != "__init__.py":
        return None
    return Path(file).resolve().parent


class LedgerSnapshot(Snapshot):
    """eventsourcing's ``Snapshot``, stamped with the code fingerprint of the aggregate's class.

    Stored under the topic ``ledger.snapshots:LedgerSnapshot``: never rename or move this class."""

    @classmethod
    def take(cls, aggregate: Any) -> LedgerSnapshot:
        snapshot = super().take(aggregate)
        snapshot.state[CODE_KEY] = code_fingerprint(type(aggregate))
        return snapshot

    def mutate(self, _: None) -> Any:
        state = dict(self.state)
        state.pop(CODE_KEY, None)
        return Snapshot(originator_id=self.originator_id, originator_version=self.originator_version,
                        timestamp=self.timestamp, topic=self.topic, state=state).mutate(None)

    def is_current(self) -> bool:
        """Taken by the code that would replay the aggregate now."""
        try:
            cls = resolve_topic(self.topic)
        except TopicError:
            return False
        return self.state.get(CODE_KEY) == code_fingerprint(cls)


def project_events(aggregate: Any, events: Iterable[Any]) -> Any:
    """eventsourcing's ``project_aggregate``, asking its question of each event — does it satisfy the
    ``@runtime_checkable`` ``CanMutateProtocol``? — by looking at the Protocol's members itself: typing's
    isinstance walks the Protocol's classes on every call in Python 3.11 (~70k instructions, several
    times what applying the event costs). An event without them is asked as before."""
    for event in events:
        if not (hasattr(event, "originator_id") and hasattr(event, "originator_version")
                and getattr(event, "mutate", None) is not None) and not isinstance(event, CanMutateProtocol):
            raise AssertionError(f"{type(event).__name__} cannot mutate an aggregate")
        aggregate = event.mutate(aggregate)
    return aggregate


class SnapshotRepository(Repository):
    """eventsourcing's repository, using a snapshot only when :meth:`LedgerSnapshot.is_current`, and
    applying events with :func:`project_events` where it would use ``project_aggregate``."""

    def get(self, aggregate_id: Any, *, version: int | None = None, projector_func: Any = project_aggregate,
            **options: Any) -> Any:
        if projector_func is project_aggregate:
            projector_func = project_events
        return super().get(aggregate_id, version=version, projector_func=projector_func, **options)

    def _reconstruct_aggregate(self, aggregate_id: Any, version: int | None, projector_func: Any) -> Any:
        snapshots = self._current_snapshot(aggregate_id, version)
        after = snapshots[0].originator_version if snapshots else None
        events = self.event_store.get(originator_id=aggregate_id, gt=after, lte=version)
        aggregate = projector_func(None, chain(snapshots, events))
        if aggregate is None:
            raise AggregateNotFoundError(f"Aggregate {aggregate_id!r} version {version!r} not found.")
        return aggregate

    def _current_snapshot(self, aggregate_id: Any, version: int | None) -> list[Any]:
        if self.snapshot_store is None:
            return []
        try:
            found = list(self.snapshot_store.get(originator_id=aggregate_id, desc=True, limit=1, lte=version))
        except (TopicError, TypeError, KeyError, ValueError, AttributeError) as e:
            log.warning("snapshot of %s unreadable, replaying its events instead: %s", aggregate_id, e)
            return []
        return [s for s in found if isinstance(s, LedgerSnapshot) and s.is_current()]


class Snapshotting:
    """Mixed into ``CaseLedger``: snapshots every ``every`` events of the given aggregate classes."""

    snapshot_class = LedgerSnapshot
    _snapshot_every = 0

    def enable_snapshots(self, classes: Iterable[type], every: int) -> None:
        # An instance attribute: eventsourcing reads ``self.snapshotting_intervals`` at each save.
        self.snapshotting_intervals = {cls: every for cls in classes} if every > 0 and self.snapshots else {}
        self._snapshot_every = every if self.snapshotting_intervals else 0

    def construct_snapshot_store(self) -> Any:
        """eventsourcing's, created a second time when the first attempt lost a race: processes
        starting at once on a new PostgreSQL database (gunicorn workers, the scheduler) each run
        ``CREATE TABLE IF NOT EXISTS`` of the snapshots table, and all but one can fail on the
        catalog's unique index of type names. The table exists by then; the second attempt finds it."""
        try:
            return super().construct_snapshot_store()
        except IntegrityError:
            return super().construct_snapshot_store()

    def construct_repository(self) -> Repository:
        base = super().construct_repository()  # eventsourcing's, with its cache settings
        return SnapshotRepository(event_store=base.event_store, snapshot_store=base.snapshot_store,
                                  cache_maxsize=_cache_maxsize(base), fastforward=base.fastforward,
                                  fastforward_skipping=base.fastforward_skipping,
                                  deepcopy_from_cache=base.deepcopy_from_cache)

    def take_snapshot(self, aggregate_id: Any, version: int | None = None, projector_func: Any = None) -> None:
        """eventsourcing's, but always a :class:`LedgerSnapshot` (the library would prefer the nested
        ``Snapshot`` class every aggregate class gets, which carries no code fingerprint)."""
        kwargs = {"projector_func": projector_func} if projector_func is not None else {}
        aggregate = self.repository.get(aggregate_id, version=version, **kwargs)
        self.snapshots.put([LedgerSnapshot.take(aggregate)])

    def _take_snapshots(self, processing_event: Any) -> None:
        every = self._snapshot_every
        # eventsourcing looks up each event's aggregate and its class's interval; a save where no event
        # brings its aggregate to a multiple of N (nearly every save) has nothing to take: say so cheaply.
        if every and all(event.originator_version % every for event in processing_event.events):
            return
        try:
            super()._take_snapshots(processing_event)
        except Exception:  # noqa: BLE001 - the command is stored already; a snapshot is only a cache
            log.warning("could not take a snapshot; the next one will be tried at the next interval", exc_info=True)


def _cache_maxsize(repository: Repository) -> int | None:
    cache = repository.cache
    if cache is None:
        return None
    return getattr(cache, "maxsize", 0)
