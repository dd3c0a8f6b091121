"""The JSON columns of the KPI case rows, written as ``json.dumps(value, sort_keys=True)`` would.

Every case row a batch changes has its three JSON columns encoded (:class:`projections.store.Codec`),
and in a rebuild nearly every case row is new: for interactions that was a third of the read
model's cost. Their shapes are known, so:

- ``milestones`` maps milestone names to stamps: both strings, joined here with the json module's
  own string escaping (anything else goes to the general writer);
- ``cohort`` is one of few buckets (day, channel, agent, tier…): its text is remembered by value;
- ``attrs`` is small and varied: the general writer (:func:`projections.jsontext.json_writer`).

``tests/kpis/test_kpi_encoding.py`` checks the texts against ``json.dumps``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from typing import Any

from projections.jsontext import json_writer
from projections.store import Codec

_write = json_writer(sort_keys=True)
#: Cohort texts kept before the memory starts afresh (a log has few buckets per day).
_MAX_COHORTS = 1 << 12
_SEQUENCES = frozenset({list, tuple})  # a cohort is a tuple while projecting, a list once read back
_STRINGS_OR_NONE = frozenset({str, type(None)})


def write_milestones(value: Any) -> str:
    """``json.dumps(value, sort_keys=True)`` of a dict of strings, written directly."""
    if type(value) is dict:
        try:
            return "{" + ", ".join([encode_basestring_ascii(name) + ": " + encode_basestring_ascii(at)
                                    for name, at in sorted(value.items())]) + "}"
        except TypeError:  # a key or value that is not a string: sorted or the escaping refuses it
            pass
    return _write(value)


def _cohort_writer() -> Callable[[Any], str]:
    """``json.dumps(cohort, sort_keys=True)``, remembered by the cohort's values when they are all
    strings or None (values of other types may be equal and written differently: ``1``, ``true``)."""
    texts: dict[tuple[Any, ...], str] = {}

    def write_cohort(value: Any) -> str:
        # Looked up first: a remembered cohort holds only strings and None, and nothing else equals
        # one of those, so whatever it is found by is written the same.
        if type(value) is tuple:
            try:
                text = texts.get(value)
            except TypeError:  # an unhashable part (a list from an event): written below
                text = None
            if text is not None:
                return text
        if type(value) not in _SEQUENCES or not _STRINGS_OR_NONE.issuperset(map(type, value)):
            return _write(value)
        key = tuple(value)
        text = texts.get(key)
        if text is None:
            text = _write(value)
            if len(texts) >= _MAX_COHORTS:
                texts.clear()
            texts[key] = text
        return text

    # Like a functools cache, so that benchmarks starting cold (bench.rebuild) empty it too.
    write_cohort.cache_clear = texts.clear  # type: ignore[attr-defined]
    write_cohort.cache_info = texts.__len__  # type: ignore[attr-defined]
    return write_cohort


write_cohort = _cohort_writer()
ATTRS_CODEC = Codec(encode=_write, decode=json.loads)
MILESTONES_CODEC = Codec(encode=write_milestones, decode=json.loads)
COHORT_CODEC = Codec(encode=write_cohort, decode=json.loads)
