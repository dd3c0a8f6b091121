"""The append planning computes what the reference tree code computes, and the recorders write it
right on both backends: batches of every size (each write path), a cached head gone stale because
another process appended, and a process that has not seen the log yet."""

from __future__ import annotations

import hashlib
import random
import sqlite3
import uuid

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.bootstrap import build, transparency_log
from ledger.integrity.fastpath import extend
from ledger.integrity.leaf import encode_leaf
from ledger.integrity.merkle import STORED_LEVEL, Frontier, leaf_hash
from ledger.keys import LogKeys
from ledger.log_append import extend_by_blocks
from ledger.recorders import SQLITE_SET_INSERT
from ledger.settings import Settings


def digests(count: int, seed: int) -> list[bytes]:
    return [hashlib.sha256(b"%d/%d" % (seed, k)).digest() for k in range(count)]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 5000), st.integers(0, 300), st.sampled_from([0, 1, STORED_LEVEL]))
def test_extend_by_blocks_gives_what_extend_gives(size, count, min_level):
    frontier = Frontier()
    for digest in digests(size, 1):
        frontier.append(digest)
    new = digests(count, 2)
    edge, nodes = extend_by_blocks(size, list(frontier.hashes), new, min_level)
    expected_edge, expected_nodes = extend(size, list(frontier.hashes), new, min_level)
    assert edge == expected_edge
    assert sorted(nodes) == sorted(expected_nodes) and len(nodes) == len(set(nodes))


def batch(n: int) -> list[StoredEvent]:
    oid = uuid.uuid4()
    return [StoredEvent(oid, k + 1, "domain.ticket:Ticket.Event", b'{"k": %d}' % k) for k in range(n)]


def test_every_write_path_and_a_stale_head_give_the_reference_log(env, ledger):
    """Two applications on one database take turns, so each one's cached head is often stale;
    a third starts late. Batch sizes cover one event, small batches and set-based inserts."""
    LogKeys.from_settings(Settings.from_environ(env)).init()
    other = build(env)
    rng = random.Random(5)
    sizes = [1, 1, 2, SQLITE_SET_INSERT - 1, SQLITE_SET_INSERT, 1, 100, 3, 1, 64, 17, 1, 1]
    written: list[StoredEvent] = []
    for turn, n in enumerate(sizes + rng.sample(range(1, 120), 8)):
        app = (ledger, other)[turn % 3 == 1]
        events = batch(n)
        ids = app.recorder.insert_events(events)
        assert len(ids) == n and list(ids) == sorted(ids)
        written += events
    late = build(env)  # has not seen the log yet
    written += (events := batch(5))
    late.recorder.insert_events(events)
    log = transparency_log(ledger, env)
    leaves = log.rows("SELECT l.leaf_index, l.notification_id, l.leaf_hash FROM {leaves} l ORDER BY l.leaf_index")
    expected = [leaf_hash(encode_leaf(e.originator_id, e.originator_version, e.topic, e.state)) for e in written]
    assert [bytes(h) for _, _, h in leaves] == expected
    assert [index for index, _, _ in leaves] == list(range(len(written)))
    positions = [position for _, position, _ in leaves]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert log.verify().ok and log.verify(reference=True).ok
    other.close()
    late.close()


def test_a_refused_batch_leaves_neither_events_nor_leaves(env, ledger):
    """A duplicate (originator, version) anywhere in a batch — small or set-based — refuses all of it."""
    LogKeys.from_settings(Settings.from_environ(env)).init()
    log = transparency_log(ledger, env)
    first = batch(3)
    ledger.recorder.insert_events(first)
    for n in (2, SQLITE_SET_INSERT + 8):
        with pytest.raises(IntegrityError):
            ledger.recorder.insert_events(batch(n) + [first[1]])
        assert log.size() == 3 == ledger.recorder.max_notification_id()
    ledger.recorder.insert_events(batch(40))
    assert log.size() == 43 and log.verify(reference=True).ok


def test_an_append_after_leaves_vanished_leaves_no_gap(env, ledger, database_url):
    """The head this process cached says 20 leaves; someone deletes the last 3 behind its back
    (as a superuser, triggers off). The next leaves follow the last remaining one — the log gets
    no gap — and verification reports the events whose leaves went missing."""
    LogKeys.from_settings(Settings.from_environ(env)).init()
    log = transparency_log(ledger, env)
    for n in (12, 8):
        ledger.recorder.insert_events(batch(n))
    delete_as_superuser(database_url, log, "DELETE FROM {leaves} WHERE leaf_index >= 17")
    ledger.recorder.insert_events(batch(2))
    assert [index for (index,) in log.rows("SELECT leaf_index FROM {leaves} ORDER BY leaf_index")] == list(range(19))
    report = log.verify(reference=True)
    assert not report.ok and report.first_problem.position == 18 and "has no leaf" in report.first_problem.description


def delete_as_superuser(database_url: str, log, statement: str) -> None:
    statement = statement.format(**log.tables)
    if log.pg:
        with psycopg.connect(database_url.split("?")[0]) as conn:
            conn.execute("SET session_replication_role = replica")  # triggers off
            conn.execute(statement)
    else:
        conn = sqlite3.connect(database_url[len("sqlite:///"):])
        conn.execute("DROP TRIGGER merkle_leaves_no_delete")
        conn.execute(statement)
        conn.commit()
        conn.close()
