"""domain.text: the one set of rules for text, numbers, times and JSON coming in from outside."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from domain import text


@pytest.mark.parametrize("value, multiline, problem", [
    ("宽带断了 ok", False, None),
    ("line one\nline two\r\n\ttabbed", True, None),
    ("line one\nline two", False, "control characters (U+000A at character 8)"),
    ("nul\x00", True, "NUL"),
    ("bell\x07", True, "control characters (U+0007"),
    ("c1\x85", True, "control characters (U+0085"),
    ("del\x7f", False, "control characters (U+007F"),
    ("lone \ud800", True, "lone surrogate (U+D800 at character 5)"),
    ("lone \udfff", False, "lone surrogate (U+DFFF"),
    ("\U0001f600 emoji and \u2028 separator", True, None),
])
def test_text_rules(value, multiline, problem):
    found = text.text_problem(value, multiline=multiline)
    assert (found is None) if problem is None else (problem in found), found


def test_the_published_patterns_say_what_the_checks_do():
    for value in ("ok", "a\nb", "a\x00", "a\ud800", "a\x85", "a\tb", "a\x1b"):
        for multiline, pattern in ((False, text.NAME_PATTERN), (True, text.FREE_TEXT_PATTERN)):
            assert (re.match(pattern, value) is not None) == (text.text_problem(value, multiline=multiline) is None)


def test_numbers_and_times():
    assert text.integer_problem(text.BIGINT) is None and text.integer_problem(-text.BIGINT) is None
    assert text.integer_problem(text.BIGINT + 1) and text.integer_problem(-(2**63))
    assert text.time_problem(date(1900, 1, 1)) is None and text.time_problem(date(2200, 12, 31)) is None
    assert text.time_problem(datetime(9999, 1, 1, tzinfo=timezone.utc)) == "must be in the years 1900 to 2200"
    assert text.time_problem(date(1899, 12, 31))
    problems = dict(text.value_problems({"a": [1, 2**64], "b": {"c": "x\x00"}, "d": Decimal("Infinity"),
                                         "e": True, "f": None, "g": float("nan")}))
    assert set(problems) == {("a", 1), ("b", "c"), ("d",), ("g",)}


@pytest.mark.parametrize("document, nested", [
    ("{}", False), ("[" * 32 + "]" * 32, False), ("[" * 33 + "]" * 33, True),
    ('{"a": "' + "[" * 100 + '"}', False),  # brackets in a string do not nest
    ('{"a": "\\"' + "{" * 40 + '"}', False),  # nor after an escaped quote
    ("[]" * 1000, False), ("[" * 1_000_000, True),
])
def test_depth_is_counted_without_parsing(document, nested):
    assert text.nests_deeper_than(document, 32) == nested


@pytest.mark.parametrize("document, error", [
    ("[" * 1000 + "]" * 1000, "nested deeper than 32 levels"),
    ("[" * 100_000, "nested deeper than 32 levels"),
    ('{"a": NaN}', "NaN is not a JSON number"),
    ('{"a": -Infinity}', "-Infinity is not a JSON number"),
    (b'{"a": "caf\xe9"}', "not valid UTF-8 (byte 10"),
    ('{"a": ', "Expecting value"),
])
def test_malformed_json(document, error):
    with pytest.raises(text.MalformedInput, match=re.escape(error)):
        text.loads(document)


def test_refused_values_name_their_path():
    with pytest.raises(text.RefusedValues) as refused:
        text.loads('{"n": %s, "list": [1, {"s": "\\ud800"}], "\\udc00": 1, "big": 1e999}' % ("9" * 5000))
    assert refused.value.messages() == {
        "n": ["must be between -9223372036854775807 and 9223372036854775807 (the number has 5000 digits)"],
        "list": {1: {"s": ["must not contain a lone surrogate (U+D800 at character 0)"]}},
        "\\udc00": ["a field name must not contain a lone surrogate"],
        "big": ["must be a finite number (this one overflows a double)"],
    }


def test_good_json_is_read_as_usual():
    assert text.loads('{"a": [1, -2, 2.5, "x\\n", true, null], "b": 9223372036854775808}') == {
        "a": [1, -2, 2.5, "x\n", True, None], "b": 9223372036854775808}  # a BIGINT too many: for the schema
    assert text.loads(b'"\xe5\xae\xbd"') == "宽"
