"""The base class of a read model: its tables, its handlers, and the digest of its content.

``projections.runtime`` runs read models (and re-exports :class:`Projection`); this module only
says what one is.
"""

from __future__ import annotations

import hashlib
import json
import operator
from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any

from projections.decode import Undecodable
from projections.failures import ProjectionFailed
from projections.rowcache import RowCache
from projections.store import Table, ViewDatabase


class Projection:
    """A read model: tables, and handlers named ``on_<EventQualname with dots as underscores>``.

    ``version`` names the handler logic; a runner refuses to extend tables built by another
    version (rebuild them instead), so a read model is always the output of one definition.

    Dispatch is by event class: :meth:`resolve` picks a class's handler (or None: the read model
    ignores it) once, so an event a read model does not care about costs one dict lookup. A read
    model that handles events otherwise than one ``on_…`` method each overrides :meth:`resolve`,
    or :meth:`apply_batch` to fold a whole batch at once. An event that could not be decoded
    (:class:`~projections.decode.Undecodable`) fails a read model that would handle its class, and
    only that one (:meth:`_resolve`).
    """

    name: str = ""
    version: int = 1
    tables: tuple[Table, ...] = ()
    #: Cost of a rebuild in µs per event beyond reading and decoding (``python -m bench.rebuild
    #: --per-model``, 100k events, cold): balances parallel rebuilds.
    rebuild_weight: int = 1
    #: For a read model that overrides :meth:`apply_batch`: whether it too skips every event of a
    #: class without a handler (then :meth:`relevant` leaves those out for it).
    handled_only: bool = False

    def __init__(self, ledger: Any):
        self.ledger = ledger
        self._handlers: dict[type, Callable[..., None] | None] = {}

    @property
    def calendar(self) -> Any:
        """The ledger's business calendar, for deadlines (it remembers its answers)."""
        return self.ledger.calendar

    def resolve(self, cls: type) -> Callable[..., None] | None:
        """The handler of events of class ``cls`` (called once per class), None to ignore them."""
        return getattr(self, "on_" + cls.__qualname__.replace(".", "_"), None)

    def _resolve(self, cls: type) -> Callable[..., None] | None:
        return self._undecodable if cls is Undecodable else self.resolve(cls)

    def handles(self, cls: type | None) -> bool:
        """Whether this read model applies events of class ``cls`` (None: a topic naming no class here)."""
        if cls is None:
            return False
        if cls not in self._handlers:
            self._handlers[cls] = self._resolve(cls)
        return self._handlers[cls] is not None

    def _undecodable(self, event: Undecodable, position: int, rows: RowCache) -> None:
        # A class no read model handles (or no class at all) changes nothing here; one this read
        # model handles cannot be applied, and skipping it would leave its rows wrong.
        if self.handles(event.cls):
            raise event.error

    def handler(self, event: Any) -> Callable[..., None] | None:
        cls = type(event)
        if cls not in self._handlers:
            self._handlers[cls] = self._resolve(cls)
        return self._handlers[cls]

    def apply(self, event: Any, position: int, rows: RowCache) -> None:
        handle = self.handler(event)
        if handle is not None:
            handle(event, position, rows)

    def apply_batch(self, events: Sequence[tuple[int, str, Any]], rows: RowCache) -> None:
        """Apply (position, topic, event)s in log order; the first failure raises :class:`ProjectionFailed`."""
        handlers = self._handlers
        handler_of = handlers.get  # a class not seen before: resolved once, in the loop (no pass over the batch first)
        try:
            for position, topic, event in events:
                handle = handler_of(type(event), _UNSEEN)
                if handle is _UNSEEN:
                    handle = handlers[type(event)] = self._resolve(type(event))
                if handle is not None:
                    handle(event, position, rows)
        except Exception as e:  # any handler error stops the projection
            raise ProjectionFailed(self.name, position, topic, e) from e

    def relevant(self, events: list[tuple[int, str, Any]],
                 by_class: dict[type, list[tuple[int, str, Any]]]) -> list[tuple[int, str, Any]]:
        """The events of a batch (``by_class``: the same, grouped by :func:`events_by_class`) that
        :meth:`apply_batch` needs, in log order: all of them for a read model that folds batches its
        own way (unless it is :attr:`handled_only`); for the others only those of classes with a handler — :meth:`apply_batch` would
        skip the rest anyway, one lookup each, and most read models handle a few classes of many."""
        if type(self).apply_batch is not Projection.apply_batch and not self.handled_only:
            return events
        wanted = [group for cls, group in by_class.items() if self.handles(cls)]
        if len(wanted) == len(by_class):
            return events
        if len(wanted) <= 1:
            return wanted[0] if wanted else []
        return sorted(chain.from_iterable(wanted), key=_POSITION)  # runs of log order: merged, not sorted afresh

    # -- digest ----------------------------------------------------------------------------------
    def digest(self, db: ViewDatabase) -> str:
        """SHA-256 over every row of every table, in a canonical order (see projections/README.md).

        Tables in name order; rows sorted in Python by their primary-key values (so no database
        collation is involved); each row is one line ``<table>\\t<JSON array of the values in
        declared column order>\\n`` (compact JSON, UTF-8, no ASCII escaping). The tracking
        position is not part of it: same events in, same digest out.
        """
        sha = hashlib.sha256()
        with db.reading() as cur:
            for table in sorted(self.tables, key=lambda t: t.name):
                rows = cur.execute(f"SELECT {', '.join(table.column_names)} FROM {table.name}").fetchall()
                key_at = [table.column_names.index(k) for k in table.key]
                rows.sort(key=lambda r: tuple(_order(r[i]) for i in key_at))
                for row in rows:
                    line = json.dumps(list(row), ensure_ascii=False, separators=(",", ":"))
                    sha.update(f"{table.name}\t{line}\n".encode())
        return sha.hexdigest()


_UNSEEN = object()  # a class this read model has not resolved a handler for yet
_POSITION = operator.itemgetter(0)


def events_by_class(events: Sequence[tuple[int, str, Any]]) -> dict[type, list[tuple[int, str, Any]]]:
    """A batch's (position, topic, event)s grouped by event class, each group in log order: made
    once per batch, so each read model only looks at the classes it handles."""
    groups: dict[type, list[tuple[int, str, Any]]] = {}
    for item in events:
        group = groups.get(type(item[2]))
        if group is None:
            groups[type(item[2])] = [item]
        else:
            group.append(item)
    return groups


def _order(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int) else (1, "" if value is None else str(value))

