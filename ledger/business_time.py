"""The business-time rule (``time.future``) for many times at once: no event may be dated later than the
wall clock plus the allowed skew. ``CaseLedger`` checks every event of every save, and every line of
an import before its first batch is saved, so the check is on the path of each stored event.

Comparing two aware datetimes of different time-zone objects (even two equal ``timezone`` objects)
calls each one's ``utcoffset()`` through a method lookup by name, ~3–4k instructions per comparison;
with the same object the wall times are compared directly. So :class:`Deadline` keeps the latest
allowed time in the fixed offset of the times it is asked about, and reads a stored time
(``meta["occurred_at"]``, ``isoformat()`` text ending in ``±HH:MM``) as a wall time and an offset.
Times in zones with rules (``ZoneInfo``), or texts of other shapes, are compared as before.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from ledger.errors import BusinessTimeAhead

#: Offsets (``+08:00``) read from stored times, by their text; a handful in practice.
_OFFSETS: dict[str, timedelta] = {}
_OFFSETS_KEPT = 64
_fromisoformat = datetime.fromisoformat


class Deadline:
    """The latest business time allowed now (the wall clock ``now`` plus ``skew``)."""

    def __init__(self, now: datetime, skew: timedelta):
        self.now, self.skew = now, skew
        self.latest = now + skew
        self._latest_utc: datetime | None = None  # naive UTC, made for the second stored time asked about
        self._texts_seen = False
        self._zone: timezone | None = None
        self._latest_in_zone = self.latest

    def require(self, at: datetime) -> None:
        """``at`` (aware) is not later than the deadline, else :class:`BusinessTimeAhead`."""
        zone = at.tzinfo
        if zone is not self._zone:
            if type(zone) is not timezone:
                if at > self.latest:
                    raise BusinessTimeAhead(at, self.now, self.skew)
                return
            self._zone, self._latest_in_zone = zone, self.latest.astimezone(zone)
        if at > self._latest_in_zone:
            raise BusinessTimeAhead(at, self.now, self.skew)

    def require_text(self, text: str) -> None:
        """The same for a time as stored in event metadata (``datetime.isoformat()``)."""
        latest_utc = self._latest_utc
        if latest_utc is None:
            if not self._texts_seen:  # the first is compared whole: a save of one event needs no more
                self._texts_seen = True
                self.require(_fromisoformat(text))
                return
            latest_utc = self._latest_utc = self.latest.astimezone(UTC).replace(tzinfo=None)
        if len(text) > 6 and text[-3] == ":" and text[-6] in "+-":
            try:
                offset = _OFFSETS.get(text[-6:])
                if offset is None:
                    offset = _offset(text[-6:])
                wall = _fromisoformat(text[:-6])
                # (an aware wall time means the text had two offsets: parsed whole below, and refused there)
                ahead = None if wall.tzinfo is not None else wall - offset > latest_utc
            except (ValueError, OverflowError):
                ahead = None  # not a time of that shape after all: parsed whole below, as before
            if ahead is False:
                return
        self.require(_fromisoformat(text))


def _offset(text: str) -> timedelta:
    offset = _fromisoformat("2000-01-01T00:00:00" + text).utcoffset()
    assert offset is not None
    if len(_OFFSETS) < _OFFSETS_KEPT:
        _OFFSETS[text] = offset
    return offset
