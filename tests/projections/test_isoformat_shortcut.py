"""compliance_findings' shortcut for received times (``domain.case_audit._isoformat``): a time text
already spelled as ``datetime.isoformat`` spells it is kept, any other is formatted. Whatever the
text, the answer must be the formatted one — the shortcut may only skip work, never change facts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import example, given, settings
from hypothesis import strategies as st

from domain.case_audit import _isoformat

#: Offsets as the ledger and other writers spell them, including the ones isoformat never writes.
OFFSETS = st.one_of(
    st.just("Z"), st.just("+00:00"), st.just("-00:00"), st.just("+0000"), st.just("+00"),
    st.builds(lambda sign, h, m: f"{sign}{h:02d}:{m:02d}", st.sampled_from("+-"), st.integers(0, 23), st.integers(0, 59)),
    st.builds(lambda sign, h, m: f"{sign}{h:02d}{m:02d}", st.sampled_from("+-"), st.integers(0, 23), st.integers(0, 59)),
    st.builds(lambda sign, h, m, s: f"{sign}{h:02d}:{m:02d}:{s:02d}", st.sampled_from("+-"), st.integers(0, 23),
              st.integers(0, 59), st.integers(0, 59)),
    st.builds(lambda sign, h, m, s, u: f"{sign}{h:02d}:{m:02d}:{s:02d}.{u:06d}", st.sampled_from("+-"),
              st.integers(0, 23), st.integers(0, 59), st.integers(0, 59), st.integers(0, 999999)),
    st.just(""),  # naive: not a business time, but the shortcut must still not lie
)


@st.composite
def spelled_times(draw) -> str:
    """A time written in one of the many ways ``datetime.fromisoformat`` reads (or nearly)."""
    moment = draw(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
    date_part = draw(st.sampled_from([moment.strftime("%Y-%m-%d"), f"{moment.year:04d}{moment.month:02d}{moment.day:02d}"]))
    separator = draw(st.sampled_from(["T", " ", "t"]))
    hour, minute, second = f"{moment.hour:02d}", f"{moment.minute:02d}", f"{moment.second:02d}"
    time_part = draw(st.sampled_from([f"{hour}:{minute}:{second}", f"{hour}:{minute}", hour, f"{hour}{minute}{second}"]))
    digits = draw(st.integers(0, 7))
    if digits and len(time_part) >= 6:
        fraction = f"{moment.microsecond:06d}{draw(st.integers(0, 9))}"[:digits]
        time_part += draw(st.sampled_from([".", ","])) + fraction
    return date_part + separator + time_part + draw(OFFSETS)


def formatted(text: str) -> str | None:
    """``isoformat`` of the moment ``text`` spells, None if it spells none."""
    try:
        return datetime.fromisoformat(text).isoformat()
    except ValueError:
        return None


def check(text: str) -> None:
    expected = formatted(text)
    if expected is not None:
        assert _isoformat(datetime.fromisoformat(text), text) == expected, text


@settings(max_examples=3000, deadline=None)
@given(spelled_times())
@example("2025-09-01T09:00:00+08:00")
@example("2025-09-01T09:00:00.000000+08:00")  # isoformat drops an all-zero fraction
@example("2025-09-01T09:00:00-00:00")  # isoformat writes +00:00
@example("2025-09-01T09:00:00Z")
@example("2025-09-01T09:00:00.250+08:00")
@example("2025-09-01 09:00:00+08:00")
@example("2025-09-01T09:00:00+08:00:00")
def test_any_spelling_gives_what_formatting_gives(text):
    check(text)


@settings(max_examples=3000, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
       st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)),
       st.sampled_from(["auto", "seconds", "microseconds", "milliseconds", "minutes"]),
       st.integers(0, 40), st.sampled_from("0123456789+-:.TZ Ｔ９x"))
def test_isoformat_texts_and_their_one_character_edits(naive, offset, timespec, at, char):
    """What the ledger writes (``isoformat`` of an aware time), and the same with one character
    changed: the kept ones must be exactly the formatted ones."""
    text = naive.replace(tzinfo=timezone(offset)).isoformat(timespec=timespec)
    check(text)
    if at < len(text):
        check(text[:at] + char + text[at + 1:])
