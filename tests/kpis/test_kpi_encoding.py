"""The KPI case rows' JSON columns are written exactly as ``json.dumps(value, sort_keys=True)``."""

from __future__ import annotations

import json

import pytest

from projections.kpi_encoding import ATTRS_CODEC, COHORT_CODEC, MILESTONES_CODEC


class Text(str):
    pass


MILESTONES = [
    {}, {"received": "2025-09-01T01:00:00.000000Z"},
    {"routed": "2025-09-01T01:00:00.000000Z", "received": "2025-09-01T01:00:00.000000Z", "registered": "x"},
    {"名": "时间", "a\"b": "c\\d", "ctl\x01": "\u2028", "emoji": "\U0001f600"},
    {"a": 1}, {"a": None}, {"a": True}, {"a": ["x"]}, {"b": "x", "a": 1.5}, {1: "x"}, {"a": "x", 2: "y"},
    {Text("k"): Text("v")}, ["not", "a", "dict"], "text",
]


def outcome(write, value) -> object:
    """The text written, or the kind of error (keys json cannot sort: both refuse them)."""
    try:
        return write(value)
    except TypeError as e:
        return type(e)


@pytest.mark.parametrize("value", MILESTONES)
def test_milestones_and_attrs_as_json_dumps_writes_them(value):
    expected = outcome(lambda v: json.dumps(v, sort_keys=True), value)
    assert outcome(MILESTONES_CODEC.encode, value) == expected
    assert outcome(ATTRS_CODEC.encode, value) == expected


def test_cohorts_as_json_dumps_writes_them_whatever_was_written_before():
    cohorts = [("2025-09-01", "phone", "-", "agent-1", "-", "vip", "-"), ["2025-09-01", "phone", "-", "agent-1", "-", "vip", "-"],
               ("2025-09-01", None, "-", "名", "-", "a\"b", "-"), ("d", 1, "-"), ("d", True, "-"), ("d", 1.0, "-"),
               ("d", Text("x"), "-"), ("d", "x", "-"), ("d", ["x"], "-"), ["d", {"a": 1}], (), [], ("d", False, "-"),
               ("d", 0, "-"), "text", {"a": 1}]
    for _ in range(2):  # the second time, from what was remembered
        for cohort in cohorts:
            assert COHORT_CODEC.encode(cohort) == json.dumps(cohort, sort_keys=True), cohort
    # A remembered cohort of strings is not taken for an equal-looking one of other types.
    COHORT_CODEC.encode(("d", "1", "-"))
    assert COHORT_CODEC.encode(("d", 1, "-")) == '["d", 1, "-"]'
