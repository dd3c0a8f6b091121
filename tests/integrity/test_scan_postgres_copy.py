"""PostgreSQL pages read by the C scan with binary COPY on libpq connections of its own
(ledger/integrity/_scan_pg.c): the same pages as the Python path, the stored nodes read with them,
integers only in the COPY statements, and no connection left open after a verification.
(The tamper tests in test_tamper.py run the same path on every forgery.)"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from ledger import logpages, logscan
from ledger.bootstrap import build, transparency_log
from ledger.integrity.fastpath import PageReplay
from ledger.keys import LogKeys
from ledger.logpages import PageSource
from ledger.settings import Settings

TOPICS = ["domain.ticket:Ticket.Classified", "", "domain.interaction:Interaction.Received"]


def stored(n: int) -> list[StoredEvent]:
    oid = uuid.uuid4()
    return [StoredEvent(originator_id=oid, originator_version=v + 1, topic=TOPICS[v % 3], state=os.urandom(v % 300))
            for v in range(n)]


@pytest.fixture
def pg_log(pg_url, tmp_path):
    env = {"CASELEDGER_DATABASE_URL": pg_url, "CASELEDGER_HOME": str(tmp_path / "home")}
    LogKeys.from_settings(Settings.from_environ(env)).init()
    ledger = build(env)
    for size in (7, 33, 1, 29):  # 70 events: pages of 16 leaves, four full and one of 6
        ledger.recorder.insert_events(stored(size))
    log = transparency_log(ledger, env)
    log.publish_checkpoint(datetime(2025, 10, 1, tzinfo=UTC))
    yield log, pg_url
    ledger.close()


def test_pages_read_by_copy_are_the_pages_read_in_python(pg_log, monkeypatch):
    log, _ = pg_log
    source = PageSource.for_log(log, page=16)
    try:
        reads = [source.summarise_next(first, [40, 70]) for first in range(0, 96, 16)]
        assert [source._scan_page_in_c(first)[1] is not None for first in range(0, 96, 16)] == [True] * 6
        monkeypatch.setattr(logpages, "_scan", None)
        in_python = [source.summarise_next(first, [40, 70]) for first in range(0, 96, 16)]
        assert reads == in_python
        assert [r.summary.count for r in reads[:5]] == [16, 16, 16, 16, 6] and reads[5].empty
        # the nodes read with a page are the stored nodes it completes, as the query reads them
        for first, read in zip(range(0, 64, 16), reads):
            assert read.stored_nodes == source.stored_nodes(PageReplay.stored_node_ranges(first, 16))
            assert len(read.stored_nodes) == 1 + sum(1 for level in range(5, 7) if (first + 16) % (1 << level) == 0)
    finally:
        source.close()


def test_only_integers_are_written_into_a_copy_statement():
    assert logpages._with_integers("x > %s AND y <= %s", (3, -1)) == "x > 3 AND y <= -1"
    for value in ("1; DROP TABLE x", 1.5, True):
        with pytest.raises(TypeError):
            logpages._with_integers("x > %s", (value,))


def test_verification_leaves_no_scan_connection_open(pg_log, monkeypatch):
    log, url = pg_log
    dsn = url.split("?", 1)[0]

    def scan_sessions() -> int:  # the C scan's own sessions (this test's server serves only this process)
        with psycopg.connect(dsn, autocommit=True) as conn:
            return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                                (logpages.SCAN_APPLICATION_NAME,)).fetchone()[0]

    monkeypatch.setattr(logscan, "PAGE", 16)  # 70 leaves: five pages, read ahead by three threads
    source = PageSource.for_log(log, page=16)
    source.summarise_next(0, [])
    assert scan_sessions() == 1  # the check below would see an open one
    source.close()
    assert settled(scan_sessions) == 0
    report = log.verify()
    assert report.ok and report.leaves == 70
    assert settled(scan_sessions) == 0


def settled(count, seconds: float = 5.0) -> int:
    """``count()`` once it is 0 or ``seconds`` have passed: a server process leaves
    pg_stat_activity a moment after its client closed the connection."""
    deadline = time.monotonic() + seconds
    while (value := count()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def test_a_page_whose_query_fails_leaves_the_scan_connection_usable(pg_log):
    """A page's statements reach the server as one query (BEGIN, the three COPYs, COMMIT): an error
    in one skips the rest and leaves the transaction aborted, so the scan rolls it back and the next
    page is read on the same connection. Data that is not binary COPY is refused the same way."""
    log, _ = pg_log
    source = PageSource.for_log(log, page=16)
    copy = "COPY (SELECT {}) TO STDOUT (FORMAT BINARY)".format
    try:
        good = source._scan_page_in_c(16)
        native = source._native
        with pytest.raises(RuntimeError, match="PostgreSQL: .*division by zero"):
            logpages._scan.postgres_copy_page(native, 16, 16, copy("1::int8, 1::int8, ''::bytea"),
                                              copy("1 / (SELECT count(*) - count(*) FROM pg_class)"), copy("1"))
        assert source._scan_page_in_c(16) == good
        for leaves, page_size in (("COPY (SELECT 1) TO STDOUT", 16), (copy("1::int8, 1::int8, ''::bytea"), 0)):
            with pytest.raises((RuntimeError, ValueError)):
                logpages._scan.postgres_copy_page(native, 16, page_size, leaves, copy("1"), copy("1"))
        with pytest.raises(RuntimeError, match="not COPY's binary format"):  # more leaf rows than the page holds
            logpages._scan.postgres_copy_page(native, 16, 1, copy("1::int8, 1::int8, ''::bytea FROM generate_series(1, 2)"),
                                              copy("1"), copy("1"))
        assert source._scan_page_in_c(16) == good
    finally:
        source.close()


def test_reading_without_hashing_vouches_for_nothing(pg_log, monkeypatch):
    """``hash=False`` (the benchmark's floor "reading the rows only") reads every row of the page
    and answers no leaf hashes, so such a page could only ever be replayed by the reference."""
    log, _ = pg_log
    source = PageSource.for_log(log, page=16)
    scan = logpages._scan

    class ReadOnly:
        postgres_connect = staticmethod(scan.postgres_connect)

        @staticmethod
        def postgres_copy_page(*args):
            return scan.postgres_copy_page(*args, False)

    try:
        (count, events, last, hashes), nodes = source._scan_page_in_c(16)
        assert hashes is not None and count == events == 16
        monkeypatch.setattr(logpages, "_scan", ReadOnly)
        assert source._scan_page_in_c(16) == ((count, events, last, None), nodes)
    finally:
        source.close()
