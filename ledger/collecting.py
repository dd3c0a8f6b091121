"""Collecting a save's pending events from its aggregates without ``typing``'s runtime Protocol checks.

eventsourcing's ``ProcessingEvent.collect_events`` asks of every object saved whether it is a domain
event and whether it can collect events: ``isinstance`` against two ``@runtime_checkable``
Protocols. In Python 3.11 such a check walks the Protocol's classes and their attributes on every
call (~70k instructions each, callgrind: about a quarter of appending one event). For an
eventsourcing aggregate the answers are known: it can collect events (``BaseAggregate`` defines
``collect_events``), and it is not an event unless it has the event's attributes — so
:class:`CollectedEvents` asks only that, and leaves anything else to eventsourcing's checks. The
events, the aggregates and the keyword arguments collected are the same.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.application import ProcessingEvent
from eventsourcing.domain import BaseAggregate


class CollectedEvents(ProcessingEvent):
    def collect_events(self, *objs: Any, **kwargs: Any) -> None:
        for obj in objs:
            # DomainEventProtocol's members are __init__, originator_id and originator_version: an
            # aggregate without an originator_id is not one, and BaseAggregate has collect_events.
            if isinstance(obj, BaseAggregate) and not hasattr(obj, "originator_id"):
                self.events.extend(obj.collect_events())
                self.aggregates[obj.id] = obj
            else:
                super().collect_events(obj)
        self.saved_kwargs.update(kwargs)
