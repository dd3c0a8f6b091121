"""Events per topic: the simplest read model, and the witness that no event is applied twice.

Its total must always equal the number of notifications up to its tracking position; the crash
test kills a runner mid-batch and checks exactly that.
"""

from __future__ import annotations

from typing import Any, Sequence

from eventsourcing.utils import get_topic

from projections.decode import Undecodable
from projections.rowcache import RowCache
from projections.runtime import Projection, ProjectionFailed
from projections.storable import storable
from projections.store import Table

COUNT_TABLE = Table("rm_event_count", columns=(("topic", "TEXT"), ("events", "BIGINT"), ("last_position", "BIGINT")),
                    key=("topic",))


class EventCounts(Projection):
    name = "event_counts"
    tables = (COUNT_TABLE,)

    def __init__(self, ledger: Any):
        super().__init__(ledger)
        self._topics: dict[type, str] = {}  # event class -> its topic

    def apply(self, event: Any, position: int, rows: RowCache) -> None:
        self.apply_batch([(position, "", event)], rows)

    def apply_batch(self, events: Sequence[tuple[int, str, Any]], rows: RowCache) -> None:
        """Counted per topic in memory, then one row update per topic the batch has."""
        seen: dict[str, list[int]] = {}
        topics = self._topics
        for position, stored_topic, event in events:
            cls = type(event)
            try:
                if cls is Undecodable:  # still an event of the log: counted under its stored topic
                    topic = storable(event.topic)
                else:
                    topic = topics[cls] if cls in topics else topics.setdefault(cls, get_topic(cls))
            except Exception as e:  # noqa: BLE001 - as for any handler
                raise ProjectionFailed(self.name, position, stored_topic, e) from e
            counted = seen.get(topic)
            if counted is None:
                seen[topic] = [1, position]
            else:
                counted[0] += 1
                counted[1] = position
        for topic, (events_seen, last) in seen.items():
            row = rows.get(COUNT_TABLE.name, topic) or {"topic": topic, "events": 0, "last_position": 0}
            row["events"] += events_seen
            row["last_position"] = last
            rows.put(COUNT_TABLE.name, row)
