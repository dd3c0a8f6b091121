"""The KPI read model's stamps and business days by the minute equal timeutil's, whatever the time."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from projections.kpi_time import EventTimes, split_time
from projections.timeutil import local_day, parse, stamp

#: Zones with daylight saving, offsets of half and three quarters of an hour, a 30-minute DST
#: shift (Lord Howe), a date-line jump (Apia), and local mean time with seconds before 1900.
ZONES = ("Asia/Shanghai", "America/New_York", "Europe/London", "Asia/Kathmandu", "Australia/Lord_Howe",
         "Pacific/Apia", "America/St_Johns", "UTC")


def reference(text: str, tz: ZoneInfo) -> tuple[str, str]:
    return stamp(text), local_day(parse(text), tz)


def spellings(moment: datetime) -> list[str]:
    texts = [moment.isoformat(), moment.isoformat(timespec="seconds"), moment.isoformat(timespec="microseconds")]
    if moment.utcoffset() == timedelta(0):
        texts += [t.replace("+00:00", "Z") for t in texts]
    return texts


def test_random_times_in_every_zone_match_timeutil():
    rng = random.Random(20261202)
    times = EventTimes()
    offsets = [timedelta(minutes=m) for m in (0, 480, -300, 345, 330, -210, 630, 780, -600, 840)]
    for _ in range(4000):
        instant = datetime(1890, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(0, 160 * 365 * 86400),
                                                                         microseconds=rng.choice([0, rng.randrange(10**6)]))
        tz = ZoneInfo(rng.choice(ZONES))
        for moment in (instant.astimezone(timezone(rng.choice(offsets))), instant.astimezone(tz)):
            for text in spellings(moment):
                assert (times.stamp(text), times.days(tz).of(text)) == reference(text, tz), text


def transitions(tz: ZoneInfo, year: int) -> list[datetime]:
    """The instants (UTC) at which ``tz`` changes its offset in ``year``."""
    found, step = [], timedelta(hours=6)
    moment = datetime(year, 1, 1, tzinfo=UTC)
    while moment.year == year:
        after = moment + step
        if moment.astimezone(tz).utcoffset() != after.astimezone(tz).utcoffset():
            low, high = moment, after  # bisect to the second
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                if middle.astimezone(tz).utcoffset() == low.astimezone(tz).utcoffset():
                    low = middle
                else:
                    high = middle
            found.append(high.replace(microsecond=0))
        moment = after
    return found


def test_times_around_offset_changes_and_midnights_match_timeutil():
    times = EventTimes()
    nearby = [timedelta(seconds=s, microseconds=u) for s in (-3601, -61, -60, -59, -1, 0, 1, 59, 60, 61, 3600)
              for u in (0, 999999)]
    for name in ZONES:
        tz = ZoneInfo(name)
        instants = []
        for year in (1900, 1901, 1927, 2011, 2021, 2025):
            instants += transitions(tz, year)
            for month in (1, 3, 4, 10, 11, 12):  # local midnights, and those of the first offset change
                instants.append(datetime(year, month, 1, tzinfo=tz).astimezone(UTC))
        for instant in instants:
            for delta in nearby:
                moment = instant + delta
                for shown in (moment, moment.astimezone(tz), moment.astimezone(timezone(timedelta(hours=8)))):
                    for text in spellings(shown):
                        assert (times.stamp(text), times.days(tz).of(text)) == reference(text, tz), text
    assert any(transitions(ZoneInfo(name), 2021) for name in ZONES)


@pytest.mark.parametrize("text", ["2025-09-01T09:00:00", "2025-09-01T24:00:00+08:00", "2025-13-01T09:00:00+08:00",
                                  "2025-09-01T09:60:00+08:00", "2025-09-01T09:00:60+08:00", "２025-09-01T09:00:00+08:00",
                                  "2025-09-01T09:00:00+08:0x", "2025-09-01T09:00:00.12345x+08:00", "not a time at all!!!!!!",
                                  "2025-09-01T09:00:00+24:00", "2025-09-01 09:00:00+08:00", "2025-09-01T09:00:00.123+08:00",
                                  "0999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
                                  "2025-W36-1T09:00:00+08:00", "2025-09-01Z09:00:00+08:00", "2025-09-01Z09:00:00Z",
                                  "2025-09-01X09:00:00+08:00", "2025-09-01T09:00:00.12345", "2025-09-01T09:00:00.1234Z",
                                  "20250901T09:00:00.1+08:00", "2025-09-01T09:00:00.１２３４５６+08:00",
                                  "2025-09-01T09:00:00+08:00Z", "2025-09-01T09:00:00.123456-08:00"])
def test_unusual_spellings_answer_or_fail_as_timeutil_does(text):
    tz = ZoneInfo("Asia/Shanghai")
    try:
        expected: object = reference(text, tz)
    except (ValueError, OverflowError) as e:
        expected = type(e)
    times = EventTimes()
    try:
        got: object = (times.stamp(text), times.days(tz).of(text))
    except (ValueError, OverflowError) as e:
        got = type(e)
    assert got == expected


def test_only_the_usual_spelling_is_split():
    assert split_time("2025-09-01T09:07:15+08:00") == ("2025-09-01T09+08:00", ":07:15.000000")
    assert split_time("2025-09-01T09:07:15.250000Z") == ("2025-09-01T09+00:00", ":07:15.250000")
    assert split_time("2025-09-01T09:07:15+05:45") == ("2025-09-01T09:07+05:45", ":15.000000")
    assert split_time("2025-09-01T09:00:15+08:00:30") is None
    assert split_time("2025-09-01T09:00:15.25+08:00") is None
