"""Which policy version is in force for a new case, remembered: asked by every new case and every line
of an import, and answered by ``PolicyBook.in_force`` in ~10 µs.

Which version is in force at an instant depends only on the local date in each version's time zone
(versions take effect on a date). So the answer is remembered twice over:

- for the **span** of instants around the last one asked during which every one of those local dates
  stays the same (from the latest of the zones' midnights before it to the earliest after it): the
  next question, usually about the same business day, costs two comparisons (when asked in a fixed
  UTC offset, as business times are: ``datetime.timezone``);
- by those **dates** (at most ``DAYS_REMEMBERED`` keys), for questions that jump between days.

A span is remembered only when each zone keeps one UTC offset all that local day: on a day its
clocks change, the dates (one time-zone conversion per zone) answer instead.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone, tzinfo
from typing import Any

from domain.policy import Policy, PolicyBook

#: Days (per time zone set) whose policy in force is remembered; past this the memo starts again.
DAYS_REMEMBERED = 4096
_ONE_DAY = timedelta(days=1)
_NEVER = datetime.min.replace(tzinfo=UTC)


class PoliciesInForce:
    def __init__(self, policies: PolicyBook):
        self.policies = policies
        self._zones: dict[str, tuple[Any, ...]] = {}
        self._by_day: dict[tuple[Any, ...], Policy] = {}
        # (policy name, the fixed-offset zone of the bounds, first instant, instant after the last, the
        # version in force): one tuple, so a thread reading it never sees one span's bounds with
        # another's answer.
        self._span: tuple[str | None, tzinfo | None, datetime, datetime, Policy | None] = (None, None, _NEVER, _NEVER, None)

    def at(self, at: datetime, name: str) -> Policy:
        """The version of policy ``name`` in force at ``at`` (aware), as ``PolicyBook.in_force`` says."""
        span = self._span
        if span[0] == name:
            # The bounds are kept in the fixed offset of the times asked about, so that checking
            # them compares wall times: datetimes in two time zones (even two equal ``timezone``
            # objects) are compared by calling each one's utcoffset(), ~3k instructions a time.
            zone = at.tzinfo
            if zone is span[1]:
                if span[2] <= at < span[3]:
                    return span[4]  # type: ignore[return-value]
            elif type(zone) is timezone and zone == span[1]:  # another object for the same offset
                same = at.replace(tzinfo=span[1])
                if span[2] <= same < span[3]:
                    return span[4]  # type: ignore[return-value]
        zones = self._zones.get(name)
        if zones is None:
            zones = self._zones[name] = tuple({p.timezone: p.tz for p in self.policies.versions(name)}.values())
        key = (name, *(at.astimezone(zone).date() for zone in zones))
        policy = self._by_day.get(key)
        if policy is None:
            policy = self.policies.in_force(at, name)  # raises if none is in force: never remembered
            if len(self._by_day) >= DAYS_REMEMBERED:
                self._by_day.clear()
            self._by_day[key] = policy
        if type(at.tzinfo) is timezone:  # a fixed offset, where wall times order as instants do
            bounds = _same_local_dates(at, zones)
            if bounds is not None:
                self._span = (name, at.tzinfo, bounds[0].astimezone(at.tzinfo), bounds[1].astimezone(at.tzinfo), policy)
        return policy


def _same_local_dates(at: datetime, zones: tuple[Any, ...]) -> tuple[datetime, datetime] | None:
    """The instants (UTC, start inclusive, end exclusive) around ``at`` with the same local date as
    ``at`` in every zone; None if a zone's UTC offset changes during its local day (the day's bounds
    would then need the zone's transitions)."""
    start = end = None
    for zone in zones:
        local = at.astimezone(zone)
        offset = local.utcoffset()
        first = datetime.combine(local.date(), time(), zone)
        after = datetime.combine(local.date() + _ONE_DAY, time(), zone)
        if first.utcoffset() != offset or after.utcoffset() != offset:
            return None
        first, after = first.astimezone(UTC), after.astimezone(UTC)
        start = first if start is None or first > start else start
        end = after if end is None or after < end else end
    if start is None or end is None:
        return None
    return start, end
