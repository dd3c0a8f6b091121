"""Tampering done directly in the database, as a superuser with the triggers disabled, is detected
and reported at the right position — on SQLite and PostgreSQL, at randomly chosen positions."""

from __future__ import annotations

import random
import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone

import psycopg
import pytest

from ledger import logpages, logscan
from ledger.bootstrap import Settings, transparency_log
from ledger.keys import LogKeys
from ledger.transparency import TransparencyLog

NOW = datetime(2025, 10, 1, tzinfo=timezone.utc)


@pytest.fixture
def log(ledger, env, ctx) -> TransparencyLog:
    LogKeys.from_settings(Settings.from_environ(env)).init()
    records = [(ctx(), {"channel": "email", "direction": "inbound", "external_ref": f"m-{n}", "content": f"msg {n}"})
               for n in range(40)]
    ledger.import_interactions(records, batch_size=7)
    customer = ledger.register_customer(ctx(), kind="individual", tier="vip", contact={"name": "钱七"})
    ticket = ledger.open_ticket(ctx(), customer_id=str(customer.id), channel="web")
    ledger.act("ticket", ticket.id, "classify", ctx(), {"priority": "normal", "complexity": "general", "high_risk": False})
    log = transparency_log(ledger, env)
    log.publish_checkpoint(NOW)
    assert verify(log).ok
    return log


class Tamperer:
    """Raw access that bypasses the append-only triggers, as an attacker with superuser rights would."""

    def __init__(self, settings: Settings, log: TransparencyLog):
        self.settings, self.log = settings, log
        self.t = log.tables

    @contextmanager
    def cursor(self):
        if self.log.pg:
            with psycopg.connect(self.settings.database_url.split("?")[0]) as conn:
                conn.execute("SET session_replication_role = replica")  # superuser: triggers off
                yield conn.cursor()
        else:
            conn = sqlite3.connect(self.settings.database_url[len("sqlite:///"):])
            names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]
            sql = [r[0] for r in conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger'")]
            for name in names:
                conn.execute(f"DROP TRIGGER {name}")
            try:
                yield conn.cursor()
                conn.commit()
            finally:
                for statement in sql:
                    conn.execute(statement)
                conn.commit()
                conn.close()

    def run(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        sql = sql.format(**self.t)
        if self.log.pg:
            sql = sql.replace("?", "%s")
        with self.cursor() as c:
            c.execute(sql, params)
            return list(c.fetchall()) if c.description else []

    def event_at(self, leaf_index: int) -> tuple:
        return self.run("SELECT e.{nid}, e.state FROM {events} e JOIN {leaves} l ON l.notification_id = e.{nid} "
                        "WHERE l.leaf_index = ?", (leaf_index,))[0]


@pytest.fixture
def tamper(env, log) -> Tamperer:
    return Tamperer(Settings.from_environ(env), log)


def positions(log: TransparencyLog, n: int = 4) -> list[int]:
    return random.Random(log.size()).sample(range(log.size()), n)


def verify(log: TransparencyLog):
    """The fast verifier (with its real page size, and with pages of 16 leaves so that pages
    merge into bigger subtrees, read ahead by threads or not, with its C inner loop or the same in
    Python) and the auditor-readable reference one agree on every report."""
    report = log.verify()
    assert log.verify(reference=True) == report
    saved = logscan.PAGE, logscan.READ_AHEAD, logpages._scan
    try:
        logscan.PAGE = 16
        assert log.verify() == report
        logscan.READ_AHEAD = 0
        assert log.verify() == report
        logpages._scan = None
        assert log.verify() == report
    finally:
        logscan.PAGE, logscan.READ_AHEAD, logpages._scan = saved
    return report


def expect_problem_at(log: TransparencyLog, leaf_index: int, words: str) -> None:
    report = verify(log)
    assert not report.ok and report.first_problem is not None
    assert report.first_problem.leaf_index == leaf_index, report.first_problem
    assert words in report.first_problem.description, report.first_problem


def test_flipped_byte_in_a_stored_event(log, tamper):
    for index in positions(log):
        position, state = tamper.event_at(index)
        forged = bytearray(state)
        forged[len(forged) // 2] ^= 0x01
        tamper.run("UPDATE {events} SET state = ? WHERE {nid} = ?", (bytes(forged), position))
        expect_problem_at(log, index, "do not hash")
        tamper.run("UPDATE {events} SET state = ? WHERE {nid} = ?", (bytes(state), position))
        assert verify(log).ok


def test_deleted_event(log, tamper):
    for index in positions(log):
        row = tamper.run("SELECT e.{nid}, e.originator_id, e.originator_version, e.topic, e.state FROM {events} e "
                         "JOIN {leaves} l ON l.notification_id = e.{nid} WHERE l.leaf_index = ?", (index,))[0]
        tamper.run("DELETE FROM {events} WHERE {nid} = ?", (row[0],))
        expect_problem_at(log, index, "missing")
        columns = "notification_id" if log.pg else "rowid"
        tamper.run(f"INSERT INTO {{events}} ({columns}, originator_id, originator_version, topic, state) "
                   "VALUES (?, ?, ?, ?, ?)", row)
        assert verify(log).ok


def test_swapped_events(log, tamper):
    first, second = sorted(positions(log, 2))
    (p1, s1), (p2, s2) = tamper.event_at(first), tamper.event_at(second)
    tamper.run("UPDATE {events} SET state = ? WHERE {nid} = ?", (s2, p1))
    tamper.run("UPDATE {events} SET state = ? WHERE {nid} = ?", (s1, p2))
    expect_problem_at(log, first, "do not hash")


def test_forged_event_inserted(log, tamper):
    size = log.size()
    top = tamper.run("SELECT MAX({nid}) FROM {events}")[0][0]
    forged_id = "0b1c9b0e-5a8e-4c55-8d6f-3d3c0a000001"
    columns = "notification_id" if log.pg else "rowid"
    tamper.run(f"INSERT INTO {{events}} ({columns}, originator_id, originator_version, topic, state) "
               "VALUES (?, ?, 1, ?, ?)", (top + 1, forged_id if log.pg else forged_id.replace("-", ""),
                                          "domain.ticket:Ticket.Received", b'{"forged": true}'))
    report = verify(log)
    assert not report.ok and report.first_problem.leaf_index == size
    assert report.first_problem.position == top + 1 and "no leaf" in report.first_problem.description


def test_a_leaf_is_found_by_its_event_after_a_forged_one(log, tamper, ledger, ctx):
    """Past an event written outside the ledger, leaves and positions no longer count in step
    (on SQLite, leaf = position - 1 stops holding): the leaf of a later event is still found,
    and its inclusion proof checks against the log's root."""
    from ledger.integrity.merkle import leaf_hash, verify_inclusion

    tamper.run("INSERT INTO {events} (originator_id, originator_version, topic, state) VALUES (?, 1, ?, ?)",
               ("0b1c9b0e5a8e4c558d6f3d3c0a000002", "t", b"{}"))
    forged = tamper.run("SELECT MAX({nid}) FROM {events}")[0][0]
    customer = ledger.register_customer(ctx(), kind="individual", tier="general", contact={})
    index, position, leaf_bytes = log.leaf_of(customer.id, 1)
    assert index == log.size() - 1 and position > forged
    proof = log.inclusion_proof(index)
    assert verify_inclusion(leaf_hash(leaf_bytes), index, log.size(), proof, log.root())


def test_altered_leaf_hash(log, tamper):
    for index in positions(log):
        original = tamper.run("SELECT leaf_hash FROM {leaves} WHERE leaf_index = ?", (index,))[0][0]
        tamper.run("UPDATE {leaves} SET leaf_hash = ? WHERE leaf_index = ?", (bytes(32), index))
        expect_problem_at(log, index, "do not hash")
        tamper.run("UPDATE {leaves} SET leaf_hash = ? WHERE leaf_index = ?", (original, index))
    assert verify(log).ok


def test_consistently_rehashed_history_breaks_the_signed_checkpoint(log, tamper, ledger):
    """An attacker who rewrites an event, its leaf hash *and* every stored node above it still
    cannot match the signed root; one who forgets the nodes is caught at the first stored node."""
    from uuid import UUID

    from ledger.integrity.fastpath import tree_levels
    from ledger.integrity.leaf import encode_leaf
    from ledger.integrity.merkle import STORED_LEVEL, leaf_hash

    index = positions(log, 1)[0]
    position, oid, version, topic, state = tamper.run(
        "SELECT e.{nid}, e.originator_id, e.originator_version, e.topic, e.state FROM {events} e "
        "JOIN {leaves} l ON l.notification_id = e.{nid} WHERE l.leaf_index = ?", (index,))[0]
    forged = bytes(state).replace(b"email", b"phone")
    tamper.run("UPDATE {events} SET state = ? WHERE {nid} = ?", (forged, position))
    tamper.run("UPDATE {leaves} SET leaf_hash = ? WHERE leaf_index = ?",
               (leaf_hash(encode_leaf(UUID(str(oid)), version, topic, forged)), index))
    stored = tamper.run("SELECT level, idx FROM {nodes} ORDER BY level, idx")
    covering = [(level, idx) for level, idx in stored if idx << level <= index < (idx + 1) << level]
    if covering:
        level, idx = covering[0]
        report = verify(log)
        assert report.first_problem.leaf_index == ((idx + 1) << level) - 1
        assert "node altered" in report.first_problem.description
        hashes = [bytes(h) for (h,) in tamper.run("SELECT leaf_hash FROM {leaves} ORDER BY leaf_index")]
        levels = tree_levels(hashes)
        for level, idx in covering:
            tamper.run("UPDATE {nodes} SET hash = ? WHERE level = ? AND idx = ?", (levels[level][idx], level, idx))
        assert all(level >= STORED_LEVEL for level, _ in covering)
    report = verify(log)
    assert not report.ok and "checkpoint at tree size" in report.first_problem.description


def test_altered_or_deleted_interior_node(log, tamper):
    """Proofs are served from stored nodes, so a forged node is reported at the leaf that completes it."""
    nodes = tamper.run("SELECT level, idx, hash FROM {nodes} ORDER BY level, idx")
    assert nodes and all(level >= 4 for level, _, _ in nodes)  # lower levels are rebuilt from leaves
    for level, idx, digest in nodes:
        last_leaf = ((idx + 1) << level) - 1
        tamper.run("UPDATE {nodes} SET hash = ? WHERE level = ? AND idx = ?", (bytes(32), level, idx))
        expect_problem_at(log, last_leaf, "node altered")
        tamper.run("DELETE FROM {nodes} WHERE level = ? AND idx = ?", (level, idx))
        expect_problem_at(log, last_leaf, "is not stored")
        tamper.run("INSERT INTO {nodes} (level, idx, hash) VALUES (?, ?, ?)", (level, idx, digest))
    tamper.run("INSERT INTO {nodes} (level, idx, hash) VALUES (?, ?, ?)", (4, log.size() // 16, bytes(32)))
    expect_problem_at(log, log.size(), "beyond the")


def test_deleted_leaf_and_leaf_pointing_elsewhere(log, tamper):
    index = positions(log, 1)[0]
    row = tamper.run("SELECT leaf_index, notification_id, leaf_hash FROM {leaves} WHERE leaf_index = ?", (index,))[0]
    tamper.run("DELETE FROM {leaves} WHERE leaf_index = ?", (index,))
    report = verify(log)
    assert not report.ok and report.first_problem.leaf_index == index
    tamper.run("INSERT INTO {leaves} (leaf_index, notification_id, leaf_hash) VALUES (?, ?, ?)", row)
    assert verify(log).ok


def test_the_database_itself_refuses_changes(ledger, log, env):
    settings = Settings.from_environ(env)
    if log.pg:
        with psycopg.connect(settings.database_url.split("?")[0]) as conn:
            for sql in (f"UPDATE {log.tables['events']} SET state = state",
                        f"DELETE FROM {log.tables['leaves']}", f"TRUNCATE {log.tables['checkpoints']}"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                    conn.execute(sql)
                conn.rollback()
    else:
        conn = sqlite3.connect(settings.database_url[len("sqlite:///"):])
        for sql in ("UPDATE stored_events SET state = state", "DELETE FROM merkle_leaves",
                    "UPDATE merkle_checkpoints SET note = ''"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                conn.execute(sql)
        conn.close()
    assert verify(log).ok
