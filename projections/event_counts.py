"""Events per topic: the simplest read model, and the witness that no event is applied twice.

Its total must always equal the number of notifications up to its tracking position; the crash
test kills a runner mid-batch and checks exactly that.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.utils import get_topic

from projections.runtime import Projection
from projections.store import RowCache, Table

COUNT_TABLE = Table("rm_event_count", columns=(("topic", "TEXT"), ("events", "BIGINT"), ("last_position", "BIGINT")),
                    key=("topic",))


class EventCounts(Projection):
    name = "event_counts"
    tables = (COUNT_TABLE,)

    def apply(self, event: Any, position: int, rows: RowCache) -> None:
        topic = get_topic(type(event))
        row = rows.get(COUNT_TABLE.name, topic) or {"topic": topic, "events": 0, "last_position": 0}
        row["events"] += 1
        row["last_position"] = position
        rows.put(COUNT_TABLE.name, row)
