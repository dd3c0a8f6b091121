"""JSON text of read-model columns: exactly ``json.dumps`` with the given options, faster for flat dicts.

Read models store small JSON objects (facts, milestones, attributes), written once per batch and
row. ``json.dumps`` sets up its encoder on every call, which costs more than encoding a dict of
three strings; most of these dicts hold only strings, whole numbers, booleans and None under
string keys, and for those the text is built here directly, with the same string escaping
function the json module uses. Anything else — nesting, floats, other types, subclasses —
goes to ``json.JSONEncoder`` itself, so the text is always the one ``json.dumps`` would write
(``tests/projections/test_jsontext.py`` compares them).
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any, Callable


def json_writer(*, sort_keys: bool = False, ensure_ascii: bool = True,
                separators: tuple[str, str] = (", ", ": ")) -> Callable[[Any], str]:
    """``lambda value: json.dumps(value, sort_keys=…, ensure_ascii=…, separators=…)``."""
    encode = json.JSONEncoder(sort_keys=sort_keys, ensure_ascii=ensure_ascii, separators=separators).encode
    string = encode_basestring_ascii if ensure_ascii else encode_basestring
    item_separator, key_separator = separators

    def write(value: Any) -> str:
        if type(value) is not dict:
            return encode(value)
        parts = []
        for key in (sorted(value) if sort_keys else value):
            if type(key) is not str:
                return encode(value)
            item = value[key]
            kind = type(item)
            if kind is str:
                text = string(item)
            elif item is None:
                text = "null"
            elif kind is bool:
                text = "true" if item else "false"
            elif kind is int:
                text = int.__repr__(item)
            else:
                return encode(value)
            parts.append(string(key) + key_separator + text)
        return "{" + item_separator.join(parts) + "}"

    return write
