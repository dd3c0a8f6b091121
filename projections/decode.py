"""Reading and decoding the notification log for projections, without eventsourcing's per-object hooks.

eventsourcing's mapper decodes a stored event with ``json.JSONDecoder(object_hook=...)``, which
calls back into Python for every JSON object in it, to turn ``{"_type_": …, "_data_": …}`` pairs
into values. Our events hold exactly one such pair, the recording time (``timestamp``), so here
the state is parsed by orjson alone (no callbacks), the time converted afterwards, and the event
built exactly as the mapper builds it (``object.__new__`` of the event class, state as its
``__dict__``). Anything else — another transcoded value anywhere in the state, a state that is
compressed or encrypted as a whole, an event class with upcasting — goes through the mapper
itself. Personal parts stay sealed either way (``CaseLedger.facts_mapper``): read models never
need them. ``tests/projections/test_decode.py`` checks that both give equal events.

Whatever a stored event holds, decoding it never fails a batch: an event whose topic names no
class here (written by another version, or by hand) or whose state cannot be decoded becomes an
:class:`Undecodable` in its place, and the read models decide (``Projection.apply_batch``: one that
would handle its class stalls there, the others go on). Text that no database column can hold
(NUL, lone surrogates) is made storable on the way (``projections.storable``); the log keeps it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, SafeUUID

import orjson
from eventsourcing.persistence import JSONTranscoder, StoredEvent
from eventsourcing.utils import resolve_topic

from projections.storable import needs_cleaning, storable_value

_TRANSCODED = b'"_type_"'


class EventDecoder:
    def __init__(self, ledger: Any):
        facts_mapper = getattr(ledger, "facts_mapper", None)
        self.mapper = facts_mapper() if facts_mapper else ledger.mapper
        self.lean = (self.mapper.cipher is None and self.mapper.compressor is None
                     and type(self.mapper.transcoder) is JSONTranscoder
                     and "datetime_iso" in self.mapper.transcoder.names)
        self._classes: dict[str, type | None] = {}  # topic -> class, None if the mapper must decode it

    def _lean_class(self, topic: str) -> type | None:
        if topic not in self._classes:
            cls = _class_of(topic)  # unknown: the mapper fails on it, and says why (an Undecodable)
            self._classes[topic] = None if cls is None or getattr(cls, "class_version", 1) != 1 else cls
        return self._classes[topic]

    def event(self, originator_id: UUID, version: int, topic: str, state: bytes) -> Any:
        """One stored event (:meth:`events` of one row)."""
        return self.events([(0, originator_id, version, topic, state)])[0][2]

    def _mapped(self, originator_id: UUID, version: int, topic: str, state: bytes) -> Any:
        """The event as the mapper decodes it: anything the lean path does not take; an
        :class:`Undecodable` if the mapper cannot."""
        try:
            made = self.mapper.to_domain_event(StoredEvent(originator_id, version, topic, state))
        except Exception as e:  # noqa: BLE001 - whatever is stored must not stop the other events
            return Undecodable(topic, _class_of(topic), e)
        if needs_cleaning(state):
            made.__dict__.update({k: storable_value(v) for k, v in made.__dict__.items()})
        return made

    def events(self, rows: Sequence[tuple[int, UUID, int, str, bytes]]) -> list[tuple[int, str, Any]]:
        """(position, topic, event) for rows (position, originator id, version, topic, state).

        The lean path is written out in the loop (a rebuild decodes every event of the log, and
        each call and lookup costs); anything it does not take goes to the mapper (:meth:`_mapped`)."""
        if not self.lean:
            return [(position, topic, self._mapped(oid, version, topic, state))
                    for position, oid, version, topic, state in rows]
        out: list[tuple[int, str, Any]] = []
        append, classes, lean_class, mapped = out.append, self._classes, self._lean_class, self._mapped
        loads, from_iso, new, set_attr = orjson.loads, datetime.fromisoformat, object.__new__, object.__setattr__
        for position, oid, version, topic, state in rows:
            cls = classes[topic] if topic in classes else lean_class(topic)
            if cls is not None and state.count(_TRANSCODED) == 1:
                try:
                    values = loads(state)
                except orjson.JSONDecodeError:  # e.g. NaN or a huge integer: json accepts those
                    values = None
                recorded = values.get("timestamp") if type(values) is dict else None
                if type(recorded) is dict and len(recorded) == 2 and recorded.get("_type_") == "datetime_iso" \
                        and "class_version" not in values and type(recorded.get("_data_")) is str:
                    # The first test inline (most states have no escape); find, not "in": bytes.__contains__
                    # first tries its argument as an integer, and makes and drops a TypeError.
                    if state.find(b"\\u") >= 0 and needs_cleaning(state):
                        values = storable_value(values)
                        recorded = values["timestamp"]
                    try:
                        values["timestamp"] = from_iso(recorded["_data_"])
                    except ValueError:  # not a time: the mapper says so (an Undecodable)
                        append((position, topic, mapped(oid, version, topic, state)))
                        continue
                    values["originator_id"] = oid
                    values["originator_version"] = version
                    made = new(cls)
                    set_attr(made, "__dict__", values)
                    append((position, topic, made))
                    continue
            append((position, topic, mapped(oid, version, topic, state)))
        return out


class Undecodable:
    """In place of a stored event that cannot be decoded: its topic, the class the topic names
    (None if it names none here) and what went wrong. The event stays in the log as it is."""

    __slots__ = ("cls", "error", "topic")

    def __init__(self, topic: str, cls: type | None, error: BaseException):
        self.topic, self.cls, self.error = topic, cls, error

    def __repr__(self) -> str:
        return f"Undecodable({self.topic!r}, {type(self.error).__name__}: {self.error})"


def _class_of(topic: str) -> type | None:
    try:
        return resolve_topic(topic)
    except Exception:  # noqa: BLE001 - an unknown module or name, or a malformed topic
        return None


class LogId(UUID):
    """An originator id read from the log that keeps its text: every read model keys its rows by
    ``str(originator_id)``, and ``UUID.__str__`` formats it afresh each time. Equal to, and
    hashing like, the plain ``UUID``."""

    __slots__ = ("_text",)

    def __str__(self) -> str:
        return self._text


#: Ids of the aggregates seen lately: a case's events (read one after another) share one object.
_RECENT_IDS: dict[str, UUID] = {}
_RECENT_IDS_MAX = 1 << 16


#: The id object of a text :func:`log_id` made lately, else None (its fast path, for callers in a loop).
recent_id = _RECENT_IDS.get


def log_id(text: str) -> UUID:
    """The id of the 32 hex digits SQLite stores, or of PostgreSQL's text form, without ``UUID()``'s
    parsing steps (a rebuild makes one per event)."""
    made = _RECENT_IDS.get(text)
    if made is not None:
        return made
    digits = (text.replace("-", "") if len(text) == 36 else text).lower()
    if len(digits) != 32 or not digits.isalnum():
        return UUID(text)
    made = object.__new__(LogId)
    object.__setattr__(made, "int", int(digits, 16))
    object.__setattr__(made, "is_safe", SafeUUID.unknown)
    object.__setattr__(made, "_text", f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}")
    if len(_RECENT_IDS) >= _RECENT_IDS_MAX:
        _RECENT_IDS.clear()
    _RECENT_IDS[text] = made
    return made


def forget_recent_ids() -> None:
    """Empty the ids remembered by :func:`log_id` (benchmarks start each round cold)."""
    _RECENT_IDS.clear()
