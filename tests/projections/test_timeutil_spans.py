"""timeutil's stamps and business days, worked out by the hour (minute) of a time's text, equal what
``datetime`` and ``zoneinfo`` say of each time on its own, whatever the time and its spelling."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from projections import timeutil
from projections.timeutil import business_days, split_time, stamp

#: Zones with daylight saving, offsets of half and three quarters of an hour, a 30-minute DST
#: shift (Lord Howe), a date-line jump (Apia), and local mean time with seconds before 1900.
ZONES = ("Asia/Shanghai", "America/New_York", "Europe/London", "Asia/Kathmandu", "Australia/Lord_Howe",
         "Pacific/Apia", "America/St_Johns", "UTC")


def reference(text: str, tz: ZoneInfo) -> tuple[str, str]:
    """The stamp and business day of a time, from datetime and zoneinfo alone (no text spans)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))  # noqa: FURB162 - as timeutil reads it
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} must carry a time zone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), moment.astimezone(tz).date().isoformat()


def answers(text: str, tz: ZoneInfo) -> tuple[str, str]:
    return stamp(text), business_days(tz).of(text)


def spellings(moment: datetime) -> list[str]:
    texts = [moment.isoformat(), moment.isoformat(timespec="seconds"), moment.isoformat(timespec="microseconds")]
    if moment.utcoffset() == timedelta(0):
        texts += [t.replace("+00:00", "Z") for t in texts]
    return texts


def test_random_times_in_every_zone_match_timeutil():
    rng = random.Random(20261202)
    timeutil.forget()  # cold: every span and day worked out here
    offsets = [timedelta(minutes=m) for m in (0, 480, -300, 345, 330, -210, 630, 780, -600, 840)]
    for _ in range(4000):
        instant = datetime(1890, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(0, 160 * 365 * 86400),
                                                                         microseconds=rng.choice([0, rng.randrange(10**6)]))
        tz = ZoneInfo(rng.choice(ZONES))
        for moment in (instant.astimezone(timezone(rng.choice(offsets))), instant.astimezone(tz)):
            for text in spellings(moment):
                assert answers(text, tz) == reference(text, tz), text


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
    timeutil.forget()  # cold: every span and day worked out here
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
                        assert answers(text, tz) == reference(text, tz), text
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
    timeutil.forget()  # cold: every span and day worked out here
    try:
        got: object = answers(text, tz)
    except (ValueError, OverflowError) as e:
        got = type(e)
    assert got == expected


def test_only_the_usual_spelling_is_split():
    assert split_time("2025-09-01T09:07:15+08:00") == ("2025-09-01T09+08:00", ":07:15.000000")
    assert split_time("2025-09-01T09:07:15.250000Z") == ("2025-09-01T09+00:00", ":07:15.250000")
    assert split_time("2025-09-01T09:07:15+05:45") == ("2025-09-01T09:07+05:45", ":15.000000")
    assert split_time("2025-09-01T09:00:15+08:00:30") is None
    assert split_time("2025-09-01T09:00:15.25+08:00") is None


def test_remembered_answers_stay_right_and_forget_empties_them():
    timeutil.forget()
    tz = ZoneInfo("Asia/Shanghai")
    texts = ["2025-09-01T09:07:15+08:00", "2025-09-01T09:59:59.999999+08:00", "2025-09-01T15:59:59Z",
             "2025-09-01T16:00:00Z", "2025-09-01 09:00:00+08:00", "2025-09-01T09:00:00+08:00"]
    first = [answers(text, tz) for text in texts]
    assert first == [answers(text, tz) for text in texts] == [reference(text, tz) for text in texts]
    assert timeutil.forget.cache_info() > 0
    timeutil.forget()
    assert timeutil.forget.cache_info() == 0
    assert [answers(text, tz) for text in texts] == first
    event = type("Event", (), {"meta": {"occurred_at": texts[0]}})()
    assert timeutil.occurred_stamp(event) == stamp(texts[0]) == first[0][0]


def test_stamps_of_datetimes_match_isoformat():
    """stamp and stamp_once of a datetime (put together from digits, not isoformat) equal the
    reference's spelling, in any zone, from year 1 to 9999."""
    rng = random.Random(20261203)
    zones = [ZoneInfo(name) for name in ZONES] + [timezone(timedelta(hours=8)), timezone(timedelta(minutes=-210)), UTC]
    low, high = datetime(1, 1, 2, tzinfo=UTC), datetime(9999, 12, 30, tzinfo=UTC)
    for _ in range(20000):
        instant = low + timedelta(seconds=rng.randrange(int((high - low).total_seconds())),
                                  microseconds=rng.choice([0, 1, 999999, rng.randrange(10**6)]))
        moment = instant.astimezone(rng.choice(zones)) if instant.year > 1 else instant
        expected = reference(moment.isoformat(), UTC)[0]
        assert timeutil.stamp_once(moment) == stamp(moment) == expected, moment
