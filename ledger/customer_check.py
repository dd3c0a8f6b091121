"""Does a customer exist? Asked by every use case that names one, and per line of an import.

A customer exists when the first stored event of that id is a customer's: one indexed row, no
replay, no decryption. Customers are never removed (erasure destroys their data key, not their
record), so a customer once seen stays known: each process keeps the ids it has seen and asks the
database about each distinct customer once — an import of 10,000 lines about 100 customers costs
at most 100 look-ups, not 10,000 reconstructions.
"""

from __future__ import annotations

from threading import Lock
from typing import Any
from uuid import UUID

from ledger.errors import NotFound

#: Ids kept per process; past this the set starts again (a memory bound, not a correctness one).
MAX_KNOWN = 200_000


class KnownCustomers:
    def __init__(self, recorder: Any, topic_prefix: str):
        self.recorder = recorder
        self.topic_prefix = topic_prefix
        self._known: set[UUID] = set()
        self._known_text: dict[str, UUID] = {}  # the same ids, by the text they were asked by
        self._lock = Lock()

    def require(self, customer_id: Any) -> UUID:
        """The customer's id, else :class:`NotFound`."""
        known = self._known_text.get(customer_id) if type(customer_id) is str else None
        if known is not None:  # the id as callers give it: no UUID parsing (a few µs per import line)
            return known
        try:
            uid = customer_id if isinstance(customer_id, UUID) else UUID(str(customer_id))
        except ValueError:
            raise NotFound(f"no customer {customer_id!r}") from None
        if uid not in self._known:
            first = self.recorder.select_events(uid, limit=1)
            if not first or not first[0].topic.startswith(self.topic_prefix):
                raise NotFound(f"no customer {customer_id}")
        with self._lock:
            if len(self._known) >= MAX_KNOWN:
                self._known.clear()
                self._known_text.clear()
            self._known.add(uid)
            if type(customer_id) is str:
                self._known_text[customer_id] = uid
        return uid
