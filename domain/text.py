"""What text, numbers and times the ledger accepts from outside: one set of rules for the API, the
command line and imports.

Every value that arrives (a JSON body, an import line, a query parameter) is checked here before
it reaches a rule or a database, so a bad one is refused naming where it was — never a 500 from
deep inside, and never stored mangled:

- **Text** is valid Unicode: no NUL (PostgreSQL ``text`` cannot hold it), no lone surrogate
  (``"\\ud800"`` is legal JSON but cannot be encoded as UTF-8, so it would fail on the way to the
  database), no control characters — except tab, line feed and carriage return in free text
  (descriptions, notes, comments; ``multiline``). Names, ids and query parameters take none.
- **Integers** fit the databases' BIGINT (±(2^63 − 1)); JSON numbers of more digits are refused
  before Python converts them (over 4,300 digits that conversion itself raises).
- **Times** lie in the years :data:`MIN_YEAR`–:data:`MAX_YEAR`: business times are recent, due
  dates a few years on, and the ledger adds durations and converts time zones without overflowing.
- **JSON** is UTF-8, nested at most :data:`MAX_JSON_DEPTH` levels (checked on the text, before the
  parser recurses), without ``NaN`` or ``Infinity`` (not JSON, though Python reads them).

Pure: the standard library only; the entry points turn these answers into their own refusals.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date
from decimal import Decimal
from typing import Any, Iterator

#: Largest integer a value may have (the databases' BIGINT).
BIGINT = 2**63 - 1
#: Business and due times lie in these years (inclusive).
MIN_YEAR, MAX_YEAR = 1900, 2200
#: Deepest nesting of arrays and objects in a JSON document (our bodies need 3).
MAX_JSON_DEPTH = 32
#: Digits of a JSON integer that can still be a BIGINT (with a sign); longer ones are not parsed.
MAX_INT_DIGITS = len(str(BIGINT)) + 1

#: Characters a name may not hold: C0 and C1 controls, DEL, lone surrogates. Free text may hold
#: tab, line feed and carriage return. (Escapes, not literals: the patterns are also published as
#: OpenAPI ``pattern``s.)
_NOT_IN_NAMES = r"\x00-\x1f\x7f-\x9f\ud800-\udfff"
_NOT_IN_FREE_TEXT = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff"
NAME_PATTERN = rf"^[^{_NOT_IN_NAMES}]*$"
FREE_TEXT_PATTERN = rf"^[^{_NOT_IN_FREE_TEXT}]*$"
_NAME_BAD = re.compile(rf"[{_NOT_IN_NAMES}]")
_FREE_TEXT_BAD = re.compile(rf"[{_NOT_IN_FREE_TEXT}]")


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why ``value`` is not acceptable text (naming the first bad character), or None."""
    bad = (_FREE_TEXT_BAD if multiline else _NAME_BAD).search(value)
    if bad is None:
        return None
    char, at = bad.group(), bad.start()
    if char == "\x00":
        return "must not contain NUL characters"
    if "\ud800" <= char <= "\udfff":
        return f"must not contain a lone surrogate (U+{ord(char):04X} at character {at})"
    allowed = " (tab, line feed and carriage return are allowed)" if multiline else ""
    return f"must not contain control characters (U+{ord(char):04X} at character {at}){allowed}"


def integer_problem(value: int, low: int = -BIGINT, high: int = BIGINT) -> str | None:
    if low <= value <= high:
        return None
    return f"must be between {low} and {high}"


def time_problem(value: date) -> str | None:
    """Dates and datetimes (a datetime is a date) outside :data:`MIN_YEAR`–:data:`MAX_YEAR`."""
    if MIN_YEAR <= value.year <= MAX_YEAR:
        return None
    return f"must be in the years {MIN_YEAR} to {MAX_YEAR}"


def value_problems(value: Any, *, multiline: bool = True) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(path, problem) for every unacceptable text, number or time in a loaded value (dicts, lists)."""
    if isinstance(value, str):
        problem = text_problem(value, multiline=multiline)
    elif isinstance(value, bool):
        problem = None
    elif isinstance(value, int):
        problem = integer_problem(value)
    elif isinstance(value, float):
        problem = None if math.isfinite(value) and abs(value) <= BIGINT else "must be a finite number within ±2^63"
    elif isinstance(value, Decimal):
        problem = None if value.is_finite() and abs(value) <= BIGINT else "must be a finite number within ±2^63"
    elif isinstance(value, date):
        problem = time_problem(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and (key_problem := text_problem(key)):
                yield (printable(key),), f"key {key_problem}"
                continue
            for path, problem in value_problems(item, multiline=multiline):
                yield (key, *path), problem
        return
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            for path, problem in value_problems(item, multiline=multiline):
                yield (index, *path), problem
        return
    else:
        problem = None
    if problem:
        yield (), problem


def printable(value: str) -> str:
    """``value`` with control characters and lone surrogates escaped (``\\uXXXX``), fit to quote."""
    return _NAME_BAD.sub(lambda bad: f"\\u{ord(bad.group()):04x}", value)


# -- bytes and JSON ---------------------------------------------------------------------------------
class MalformedInput(ValueError):
    """Not UTF-8, or not JSON we read (syntax, NaN, nested too deeply): the whole input is refused."""


class RefusedValues(ValueError):
    """Well-formed JSON holding values we refuse (a lone surrogate, an oversized number), by path."""

    def __init__(self, problems: list[tuple[tuple[Any, ...], str]]):
        self.problems = problems
        super().__init__("; ".join(f"{'.'.join(map(str, path)) or 'value'}: {problem}" for path, problem in problems))

    def messages(self) -> dict[Any, Any]:
        """The problems nested by path, like marshmallow's errors: ``{"contact": {"name": [...]}}``."""
        out: dict[Any, Any] = {}
        for path, problem in self.problems:
            node = out
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node.setdefault(path[-1] if path else "_schema", []).append(problem)
        return out


def decode_utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MalformedInput(f"not valid UTF-8 (byte {e.start}: {data[e.start:e.start + 1]!r})") from None


class _Oversized(str):
    """A JSON integer of more digits than any BIGINT: kept as its text, refused by its path."""


def _parse_int(digits: str) -> int | _Oversized:
    return int(digits) if len(digits) <= MAX_INT_DIGITS else _Oversized(digits)


def _no_constant(name: str) -> None:
    raise MalformedInput(f"{name} is not a JSON number")


#: A JSON string token (skipped whole, brackets inside it do not count) or a bracket.
_STRUCTURE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


def nests_deeper_than(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Does ``text`` nest arrays and objects more than ``limit`` levels deep? (Scans, never recurses.)"""
    if text.count("[") + text.count("{") <= limit:  # most documents: too few brackets to need a scan
        return False
    depth = 0
    for token in _STRUCTURE.finditer(text):
        mark = token.group()
        if mark in "[{":
            depth += 1
            if depth > limit:
                return True
        elif mark in "]}":
            depth -= 1
    return False


def loads(text: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse one JSON document by the rules above: :class:`MalformedInput` or :class:`RefusedValues`."""
    if isinstance(text, bytes):
        text = decode_utf8(text)
    if nests_deeper_than(text, max_depth):
        raise MalformedInput(f"nested deeper than {max_depth} levels")
    try:
        value = json.loads(text, parse_int=_parse_int, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise MalformedInput(f"{e.msg} (line {e.lineno}, column {e.colno})") from None
    except RecursionError:  # the depth scan is the guard; this is its backstop
        raise MalformedInput(f"nested deeper than {max_depth} levels") from None
    problems = list(_encoding_problems(value))
    if problems:
        raise RefusedValues(problems)
    return value


def _encoding_problems(value: Any) -> Iterator[tuple[tuple[Any, ...], str]]:
    """What cannot travel further at all: lone surrogates (anywhere, keys too) and oversized integers.
    Everything else (NUL, control characters, ranges) is for the schema, which knows the field."""
    if isinstance(value, _Oversized):
        yield (), f"must be between {-BIGINT} and {BIGINT} (the number has {len(value.lstrip('-'))} digits)"
    elif isinstance(value, str):
        if (bad := re.search(r"[\ud800-\udfff]", value)) is not None:
            yield (), f"must not contain a lone surrogate (U+{ord(bad.group()):04X} at character {bad.start()})"
    elif isinstance(value, float) and not math.isfinite(value):
        yield (), "must be a finite number (this one overflows a double)"
    elif isinstance(value, dict):
        for key, item in value.items():
            if re.search(r"[\ud800-\udfff]", key):
                yield (printable(key),), "a field name must not contain a lone surrogate"
                continue
            for path, problem in _encoding_problems(item):
                yield (key, *path), problem
    elif isinstance(value, list):
        for index, item in enumerate(value):
            for path, problem in _encoding_problems(item):
                yield (index, *path), problem
