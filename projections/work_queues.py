"""Work queues: what waits for whom, one row per waiting case, keyset-paginated like the case lists.

- ``unregistered_contacts``: contacts received and not yet registered (owner ``-``: the shared
  intake queue any agent may take, 003 §1.2 100 % registration);
- ``open_feedback``: feedback not yet replied to (nor turned into a complaint); its owner is whoever
  last acted on it — the person who recorded it, then the one who responded (feedback has no
  assigned owner of its own);
- ``complaints``: complaints not yet archived, by their current handler.

Rows are ordered by ``seq``, the log position of the case's creation event, so a page is one index
range and rows added meanwhile never shift a page. Ids and facts only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from projections.queries import keyset_page
from projections.rowcache import RowCache
from projections.runtime import Projection
from projections.store import Table, ViewDatabase
from projections.timeutil import occurred_stamp

QUEUES = ("unregistered_contacts", "open_feedback", "complaints")
WORK_TABLE = Table("rm_work_item", columns=(("queue", "TEXT"), ("case_id", "TEXT"), ("seq", "BIGINT"),
                                            ("owner", "TEXT"), ("kind", "TEXT"), ("channel", "TEXT"),
                                            ("status", "TEXT"), ("since", "TEXT"), ("updated_at", "TEXT")),
                   key=("queue", "case_id"), indexes=(("queue", "seq"), ("queue", "owner", "seq")))
_T = WORK_TABLE.name
#: Complaint events that change its status in the queue.
_COMPLAINT_STATUS = {"Classified": "classified", "InvestigationStarted": "investigating", "RemedyDecided": "remedied",
                     "CustomerNotified": "notified", "Evaluated": "evaluated", "ClosedUnevaluated": "unevaluated"}


class WorkQueues(Projection):
    name = "work_queues"
    rebuild_weight = 2
    tables = (WORK_TABLE,)

    def resolve(self, cls: type) -> Any:
        name = cls.__qualname__
        if name.startswith("Complaint.") and name.split(".", 1)[1] in _COMPLAINT_STATUS:
            status = _COMPLAINT_STATUS[name.split(".", 1)[1]]
            return lambda e, position, rows: self._update(rows, "complaints", e, status=status)
        return super().resolve(cls)

    handled_only = True  # apply_batch below dispatches as any read model's does

    def __init__(self, ledger: Any):
        super().__init__(ledger)
        #: Contacts received in this batch and not registered (yet): case id -> (event, position, its stamp).
        self._received: dict[str, tuple[Any, int, str]] = {}

    def apply(self, event: Any, position: int, rows: RowCache) -> None:
        self.apply_batch([(position, "", event)], rows)

    def apply_batch(self, events: Sequence[tuple[int, str, Any]], rows: RowCache) -> None:
        """As any read model's, except that a contact's row is put at the end of the batch, if it is
        not registered by then: nearly every contact is registered right after it is received, and
        its row would be put only to be deleted."""
        self._received = {}  # a failed batch's are dropped, as the runner drops its cache
        super().apply_batch(events, rows)
        for e, position, at in self._received.values():
            self._put(rows, "unregistered_contacts", e, position, None, "interaction", "received", at)
        self._received = {}

    def _put(self, rows: RowCache, queue: str, e: Any, position: int, owner: str | None, kind: str,
             status: str, at: str | None = None) -> None:
        at = at or occurred_stamp(e)
        rows.put(_T, {"queue": queue, "case_id": str(e.originator_id), "seq": position, "owner": owner or "-",
                      "kind": kind, "channel": getattr(e, "channel", None) or "-", "status": status, "since": at,
                      "updated_at": at})

    def _update(self, rows: RowCache, queue: str, e: Any, **changes: Any) -> None:
        row = rows.get(_T, queue, str(e.originator_id))
        if row is not None:  # not waiting (any more): nothing to change
            rows.put(_T, {**row, **changes, "updated_at": occurred_stamp(e)})

    def on_Interaction_Received(self, e: Any, position: int, rows: RowCache) -> None:
        # Stamped now: a time that cannot be stamped fails this event, as when its row was put at once.
        self._received[str(e.originator_id)] = (e, position, occurred_stamp(e))

    def on_Interaction_Registered(self, e: Any, position: int, rows: RowCache) -> None:
        if self._received.pop(str(e.originator_id), None) is None:
            rows.delete(_T, "unregistered_contacts", str(e.originator_id))

    def on_Feedback_Submitted(self, e: Any, position: int, rows: RowCache) -> None:
        self._put(rows, "open_feedback", e, position, e.meta.get("actor_id"), e.kind, "received")

    def on_Feedback_Responded(self, e: Any, position: int, rows: RowCache) -> None:
        self._update(rows, "open_feedback", e, owner=e.meta.get("actor_id") or "-", status="responded")

    def on_Feedback_Replied(self, e: Any, position: int, rows: RowCache) -> None:
        rows.delete(_T, "open_feedback", str(e.originator_id))

    def on_Feedback_EscalatedToComplaint(self, e: Any, position: int, rows: RowCache) -> None:
        rows.delete(_T, "open_feedback", str(e.originator_id))

    def on_Complaint_Accepted(self, e: Any, position: int, rows: RowCache) -> None:
        self._put(rows, "complaints", e, position, e.handler, "complaint", "accepted")

    def on_Complaint_HandlerReassigned(self, e: Any, position: int, rows: RowCache) -> None:
        self._update(rows, "complaints", e, owner=e.handler)

    def on_Complaint_Archived(self, e: Any, position: int, rows: RowCache) -> None:
        rows.delete(_T, "complaints", str(e.originator_id))


def list_work(db: ViewDatabase, queue: str, *, owner: str | None = None, cursor: str | None = None,
              limit: int = 50) -> dict[str, Any]:
    """One page of a queue, oldest first; ``next_cursor`` is None on the last page."""
    if queue not in QUEUES:
        raise ValueError(f"queue must be one of {', '.join(QUEUES)}")
    where, params = ["queue = ?"], [queue]
    if owner:
        where.append("owner = ?")
        params.append(owner)
    return keyset_page(db, WORK_TABLE, f"work:{queue}", where, params, cursor, limit)
