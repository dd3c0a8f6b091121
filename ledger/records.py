"""Plain views of stored events, for the API, the CLI and auditors."""

from __future__ import annotations

from typing import Any

from eventsourcing.utils import get_topic

#: Event attributes that belong to the envelope, not to what the event says.
_ENVELOPE = {"originator_id", "originator_version", "timestamp", "originator_topic", "meta", "personal"}


def event_record(event: Any, position: int | None = None) -> dict[str, Any]:
    """One event as a JSON-ready dict: who, when, under which policy, what, and personal data apart."""
    attrs = vars(event)
    record: dict[str, Any] = {
        "aggregate_id": str(event.originator_id),
        "version": event.originator_version,
        "type": type(event).__name__,
        "topic": get_topic(type(event)),
        "recorded_at": event.timestamp.isoformat(),
        "meta": dict(attrs.get("meta") or {}),
        "data": {k: plain(v) for k, v in attrs.items() if k not in _ENVELOPE},
        "personal": attrs.get("personal"),
    }
    if position is not None:
        record["position"] = position
    return record


def plain(value: Any) -> Any:
    """A JSON-ready copy of a stored value (dicts, lists and scalars; anything else as text)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return str(value)
