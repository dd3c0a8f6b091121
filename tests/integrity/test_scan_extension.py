"""The verifier's C inner loop (ledger/integrity/_scan.c) is built, and computes exactly what the
Python fast path and the reference encoding compute — on pages read from SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import given
from hypothesis import strategies as st

from ledger import logpages
from ledger.bootstrap import transparency_log
from ledger.integrity.fastpath import page_edges_python, tree_levels_python
from ledger.integrity.leaf import encode_leaf
from ledger.integrity.merkle import leaf_hash
from ledger.keys import LogKeys
from ledger.logpages import PageSource
from ledger.settings import Settings

_scan = logpages._scan  # None if not built: then the first test says how to build it


def test_the_extension_is_built():
    assert _scan is not None, ("ledger.integrity._scan is not built: install a C compiler and the headers of OpenSSL "
                               "and SQLite (Debian: gcc libssl-dev libsqlite3-dev), then `pip install -e .` again")


@given(st.lists(st.binary(min_size=32, max_size=32), max_size=70))
def test_tree_levels_in_c_are_the_python_ones(hashes):
    assert _scan.tree_levels(hashes) == tree_levels_python(hashes)


@given(st.integers(0, 5), st.lists(st.binary(min_size=32, max_size=32), max_size=40), st.data())
def test_page_edges_in_c_are_the_python_ones(page, hashes, data):
    """The same subtrees for any counts, and None as soon as a node of the page at min_level or
    above is missing or differs (or is stored as a hash of another length or type)."""
    first = page * 64
    levels = tree_levels_python(hashes)
    stored = {(level, (first >> level) + j): digest for level in range(2, len(levels))
              for j, digest in enumerate(levels[level])}
    stored[(9, 9)] = b"not part of this page"
    counts = data.draw(st.lists(st.integers(0, len(hashes)), max_size=4))
    assert _scan.page_edges(first, hashes, stored, counts, 2) == page_edges_python(first, hashes, stored, counts, 2)
    if stored and data.draw(st.booleans()):
        node = data.draw(st.sampled_from(sorted(stored)))
        stored[node] = data.draw(st.sampled_from([None, b"", bytearray(stored[node]), bytes(32), stored[node][:31]]))
        assert _scan.page_edges(first, hashes, stored, counts, 2) == page_edges_python(first, hashes, stored, counts, 2)
    if data.draw(st.booleans()):
        stored.pop(data.draw(st.sampled_from(sorted(stored))))
        assert _scan.page_edges(first, hashes, stored, counts, 2) == page_edges_python(first, hashes, stored, counts, 2)


def test_page_edges_refuse_counts_beyond_the_page():
    with pytest.raises(ValueError):
        _scan.page_edges(0, [bytes(32)] * 4, {}, [5], 4)


def test_tree_levels_refuse_what_is_not_a_hash():
    with pytest.raises(ValueError):
        _scan.tree_levels([b"short"])


TOPICS = ["domain.ticket:Ticket.Classified", "domain.interaction:Interaction.Received", ""]


def stored(n: int) -> list[StoredEvent]:
    oid = uuid.uuid4()
    return [StoredEvent(originator_id=oid, originator_version=v + 1, topic=TOPICS[v % 3], state=os.urandom(v % 200))
            for v in range(n)]


@pytest.fixture
def source(ledger, env):
    for size in (5, 40, 1, 30):
        ledger.recorder.insert_events(stored(size))
    log = transparency_log(ledger, env)
    source = PageSource.for_log(log, page=16)
    yield source
    source.close()


def test_pages_read_in_c_are_the_pages_read_in_python(source, ledger, monkeypatch):
    events = ledger.recorder.select_notifications(start=1, limit=1000)
    expected = [leaf_hash(encode_leaf(e.originator_id, e.originator_version, e.topic, e.state)) for e in events]
    in_c = [source.summarise_next(first, [40, 76]) for first in range(0, 96, 16)]
    monkeypatch.setattr(logpages, "_scan", None)
    in_python = [source.summarise_next(first, [40, 76]) for first in range(0, 96, 16)]
    assert in_c == in_python
    assert [read.summary.count for read in in_c[:5]] == [16, 16, 16, 16, 12]
    assert [read.upto is None for read in in_c] == [False] * 4 + [True, True]
    assert in_c[5].empty and not in_c[4].empty
    assert in_c[2].summary.checkpoint_edges and in_c[4].summary.checkpoint_edges  # sizes 40 and 76
    full_pages = [r.summary.edge[0] for r in in_c[:4]]
    assert full_pages == [tree_levels_python(expected[i:i + 16])[4][0] for i in range(0, 64, 16)]


def test_a_page_the_c_loop_cannot_vouch_for_is_left_to_the_reference(ledger, env):
    """A non-ASCII topic (valid, but the C loop leaves UTF-8 to the reference): the page's C scan
    answers None, the reference replays the page, and the log verifies."""
    LogKeys.from_settings(Settings.from_environ(env)).init()
    ledger.recorder.insert_events(stored(3) + [StoredEvent(uuid.uuid4(), 1, "domain.ticket:Ticket.Géré", b"{}")])
    log = transparency_log(ledger, env)
    log.publish_checkpoint(datetime(2025, 10, 1, tzinfo=UTC))
    source = PageSource.for_log(log, page=16)
    try:
        count, events, _last, hashes = source._scan_in_c(0)
        assert (count, events, hashes) == (4, 4, None)
    finally:
        source.close()
    assert log.verify(reference=True).ok and log.verify().ok
