"""What a read model can store the same way on both databases (projections/storable.py), and
which errors stall a read model rather than being retried (projections/stalls.py)."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from psycopg import errors

from projections.failures import ProjectionFailed
from projections.stalls import MAX_REASON, is_transient, reason_of
from projections.storable import (MAX_INDEX_ENTRY_BYTES, REPLACEMENT, UnstorableValue, check_rows, needs_cleaning,
                                  storable, storable_value)
from projections.store import Table

TABLE = Table("rm_t", columns=(("id", "TEXT"), ("tag", "TEXT"), ("note", "TEXT"), ("n", "BIGINT")), key=("id",),
              indexes=(("tag", "n"),))


def test_nul_and_lone_surrogates_become_the_replacement_character_everywhere():
    assert storable("a\x00b\ud800c\udfff") == f"a{REPLACEMENT}b{REPLACEMENT}c{REPLACEMENT}"
    assert storable("😀 ok") == "😀 ok"  # a whole character outside the BMP is not a surrogate
    value = {"k\x00": ["x\x00", {"deep": ("\udc80", 1, None, True)}], "n": 10 ** 30}
    assert storable_value(value) == {f"k{REPLACEMENT}": [f"x{REPLACEMENT}", {"deep": (REPLACEMENT, 1, None, True)}],
                                     "n": 10 ** 30}


def test_only_states_that_spell_nul_or_a_surrogate_are_walked():
    assert needs_cleaning(rb'{"a":"x\u0000"}') and needs_cleaning(rb'{"a":"\uD800"}')
    assert needs_cleaning(rb'{"a":"\ud83d\ude00"}')  # a valid pair: walked, and left as it is
    assert not needs_cleaning(rb'{"a":"\u00e9 plain","b":"\u4e2d"}')


def test_values_both_databases_store_alike_pass_and_say_whether_they_are_bulk_typed():
    assert check_rows(TABLE, [("1", "a", "x" * 1_000_000, 5), ("2", None, None, None)]) is True
    assert check_rows(TABLE, []) is True


@pytest.mark.parametrize("row, complaint", [
    (("1", "a", None, "5"), "rm_t.n is BIGINT; a value of type str"),
    (("1", "a", None, True), "rm_t.n is BIGINT; a value of type bool"),
    (("1", "a", None, 1.5), "rm_t.n is BIGINT; a value of type float"),
    (("1", "a", None, 1 << 63), "rm_t.n is BIGINT; an integer beyond 64 bits"),
    (("1", "a", None, -(1 << 63) - 1), "rm_t.n is BIGINT; an integer beyond 64 bits"),
    (("1", 7, None, 1), "rm_t.tag is TEXT; an integer of 3 bits"),
    (("1", "a", {"x": 1}, 1), "rm_t.note is TEXT; a value of type dict"),
    ((None, "a", None, 1), "rm_t.id: a key column cannot be NULL"),
    (("k" * 2001, "a", None, 1), "rm_t (id): an index entry of 2,001 bytes"),
    (("1", "中" * 700, None, 1), "rm_t (tag): an index entry of 2,100 bytes"),
])
def test_values_one_database_would_refuse_or_store_otherwise_are_refused_on_both(row, complaint):
    with pytest.raises(UnstorableValue) as refused:
        check_rows(TABLE, [("0", "ok", None, 0), row])
    assert str(refused.value).startswith(complaint)


def test_the_index_bound_is_exact():
    assert check_rows(TABLE, [("k" * MAX_INDEX_ENTRY_BYTES, "中" * (MAX_INDEX_ENTRY_BYTES // 3), None, 1)])


def test_errors_that_may_pass_are_retried_and_the_others_stall():
    locked = sqlite3.OperationalError("database is locked")
    assert is_transient(locked) and is_transient(ProjectionFailed("x", 1, "t", locked))
    assert is_transient(psycopg.OperationalError("server closed the connection unexpectedly"))
    assert is_transient(errors.SerializationFailure()) and is_transient(errors.UndefinedTable())
    assert not is_transient(errors.ProgramLimitExceeded())  # index row too big: the same next time
    assert not is_transient(psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"))
    assert not is_transient(ProjectionFailed("x", 1, "t", AttributeError("no attribute 'priority'")))
    assert not is_transient(UnstorableValue("rm_t.n is BIGINT"))


def test_a_reason_is_one_storable_line_of_bounded_length():
    reason = reason_of(ProjectionFailed("x", 1, "t", ValueError("a\x00b\nc" + "z" * 1000)))
    assert reason.startswith("ValueError: a\ufffdb c") and "\n" not in reason and len(reason) == MAX_REASON
