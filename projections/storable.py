"""What a read model can store, the same way on SQLite and PostgreSQL, whatever an event holds.

The log keeps every event exactly as it was stored, and some stored events hold what a database
column cannot (an event written below the API's validation, or before it existed). Two rules make
such events harmless and keep the two backends — and so the determinism digests — identical:

1. **Text is made storable when an event is decoded** (:func:`storable_value`, called by
   ``projections.decode``). PostgreSQL ``text`` cannot hold NUL, and neither database driver can
   encode a lone UTF-16 surrogate (``"\\ud800"``, which JSON can spell); each such character is
   replaced by U+FFFD (the Unicode replacement character), in keys and values, at any depth. The
   replacement is visible in the read model (an investigator sees that something was there), it
   is never written back to the log, and the same event always reads the same. Only events whose
   stored JSON spells one of them (:func:`needs_cleaning`, one regex over the bytes) pay for it.
2. **A value neither database would store the same way is refused before writing**
   (:func:`check_rows`): a TEXT column takes text, a BIGINT column an integer (not a bool, not a
   float) within 64 bits, key columns are never NULL, and the text of one index entry (primary
   key or secondary index) is at most :data:`MAX_INDEX_ENTRY_BYTES` bytes, which PostgreSQL's
   B-tree needs and SQLite does not. SQLite would quietly store ``"abc"`` in a BIGINT column or
   NULL in a TEXT primary key; PostgreSQL would refuse it. Refusing on both makes the event stall
   its read model on both (``projections.stalls``) instead of diverging.
"""

from __future__ import annotations

import functools
import operator
import re
from typing import Any, Sequence

#: What replaces a character no read-model column can hold.
REPLACEMENT = "\ufffd"
#: PostgreSQL refuses a B-tree entry over ~2,700 bytes (a third of a page); room for the header
#: and BIGINT columns. Counted in UTF-8 bytes of the entry's text values.
MAX_INDEX_ENTRY_BYTES = 2000
_BIGINT = (-(1 << 63), (1 << 63) - 1)
_NOT_NONE = functools.partial(operator.is_not, None)

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
#: JSON escapes that decode to NUL or to a surrogate (a valid pair decodes to one character and is
#: left as it is by :func:`storable`; it only costs the walk). JSON cannot hold a raw NUL, and raw
#: surrogates are not UTF-8: a decoder refuses both, so escapes are the only way in.
_ESCAPED = re.compile(rb"\\u(?:0000|[dD][89abcdefABCDEF])")


class UnstorableValue(TypeError):
    """A row value that one of the databases would refuse or store differently."""


def needs_cleaning(state: bytes) -> bool:
    """Whether a stored event's JSON may decode to text with NUL or a lone surrogate."""
    return b"\\u" in state and _ESCAPED.search(state) is not None  # the first test: memchr speed


def storable(text: str) -> str:
    """``text`` with NUL and lone surrogates replaced by U+FFFD (see the module docstring)."""
    return _UNSTORABLE.sub(REPLACEMENT, text)


def storable_value(value: Any) -> Any:
    """A decoded JSON value with every string in it (keys included) made :func:`storable`."""
    kind = type(value)
    if kind is str:
        return storable(value)
    if kind is dict:
        return {storable_value(k): storable_value(v) for k, v in value.items()}
    if kind is list:
        return [storable_value(v) for v in value]
    if kind is tuple:
        return tuple(storable_value(v) for v in value)
    return value


def check_rows(spec: Any, values: Sequence[Sequence[Any]]) -> bool:
    """Raise :class:`UnstorableValue` for a value of rows ``values`` (stored values in column order
    of table ``spec``) that is not storable the same way on both databases; return whether every
    value has exactly its column's bulk type (``Table.bulk_types``), so PostgreSQL can write them as
    typed arrays. Column-wise set operations: the common case costs no Python loop per value."""
    if not values:
        return True
    columns = list(zip(*values))
    typed = True
    for index in _key_indexes(spec):
        if None in columns[index]:
            raise UnstorableValue(f"{spec.name}.{spec.column_names[index]}: a key column cannot be NULL")
    for index, (column, allowed) in enumerate(zip(columns, spec.bulk_types)):
        if set(map(type, column)) <= allowed:
            continue
        typed = False
        text = str in allowed
        for value in column:
            if value is None or (isinstance(value, str) if text else _is_bigint(value)):
                continue
            raise UnstorableValue(f"{spec.name}.{spec.column_names[index]} is {'TEXT' if text else 'BIGINT'}; "
                                  f"{_describe(value)} cannot be stored in it")
    _check_index_entries(spec, columns)
    if typed:  # exact ints, but maybe beyond 64 bits: both databases refuse, with different errors
        for index in _bigint_indexes(spec):
            numbers = columns[index]
            if min(filter(_NOT_NONE, numbers), default=0) < _BIGINT[0] or \
                    max(filter(_NOT_NONE, numbers), default=0) > _BIGINT[1]:
                raise UnstorableValue(f"{spec.name}.{spec.column_names[index]} is BIGINT; an integer beyond "
                                      "64 bits cannot be stored in it")
    return typed


def _is_bigint(value: Any) -> bool:
    return isinstance(value, int) and type(value) is not bool and _BIGINT[0] <= value <= _BIGINT[1]


def _describe(value: Any) -> str:
    if isinstance(value, int) and type(value) is not bool:
        return f"an integer of {value.bit_length()} bits"
    return f"a value of type {type(value).__name__}"


def _check_index_entries(spec: Any, columns: list[tuple[Any, ...]]) -> None:
    """No index entry's text over :data:`MAX_INDEX_ENTRY_BYTES`: first by the longest value per
    column (4 bytes a character at most), row by row only when that bound is exceeded."""
    longest: dict[int, int] = {}
    for entry in _text_index_entries(spec):
        for index in entry:
            if index not in longest:
                longest[index] = max(map(len, filter(None, columns[index])), default=0)
        if sum(longest[i] for i in entry) * 4 <= MAX_INDEX_ENTRY_BYTES:
            continue
        for row in zip(*(columns[i] for i in entry)):
            size = sum(len(v.encode("utf-8")) for v in row if isinstance(v, str))
            if size > MAX_INDEX_ENTRY_BYTES:
                names = ", ".join(spec.column_names[i] for i in entry)
                raise UnstorableValue(f"{spec.name} ({names}): an index entry of {size:,} bytes of text is over "
                                      f"the {MAX_INDEX_ENTRY_BYTES:,} an index can hold")


@functools.lru_cache(maxsize=None)
def _key_indexes(spec: Any) -> tuple[int, ...]:
    return tuple(spec.column_names.index(k) for k in spec.key)


@functools.lru_cache(maxsize=None)
def _bigint_indexes(spec: Any) -> tuple[int, ...]:
    return tuple(i for i, allowed in enumerate(spec.bulk_types) if int in allowed)


@functools.lru_cache(maxsize=None)
def _text_index_entries(spec: Any) -> tuple[tuple[int, ...], ...]:
    """Per index (the primary key and each secondary index): its TEXT columns' positions."""
    entries = []
    for columns in (spec.key, *spec.indexes):
        text = tuple(i for i in (spec.column_names.index(c) for c in columns) if str in spec.bulk_types[i])
        if text:
            entries.append(text)
    return tuple(entries)
