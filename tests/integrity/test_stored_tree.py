"""The tree the recorders store (leaves, and nodes from level 4 up) gives the RFC 9162 roots and
proofs — also when two processes append in turn and when a transaction is rolled back."""

from __future__ import annotations

import random
import uuid

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from ledger.bootstrap import build, transparency_log
from ledger.integrity.leaf import encode_leaf
from ledger.integrity.merkle import (
    STORED_LEVEL,
    Frontier,
    leaf_hash,
    reference_consistency,
    reference_inclusion,
    reference_root,
)
from ledger.keys import LogKeys
from ledger.settings import Settings

TOPIC = "domain.ticket:Ticket.Event"


def batch(n: int, oid: uuid.UUID | None = None, start: int = 1) -> list[StoredEvent]:
    oid = oid or uuid.uuid4()
    return [StoredEvent(oid, start + k, TOPIC, b'{"k": %d}' % k) for k in range(n)]


@pytest.fixture
def stored(env, ledger):
    """~150 events appended by two applications on one database, in batches of uneven size,
    with a failed (rolled back) insert in the middle."""
    LogKeys.from_settings(Settings.from_environ(env)).init()
    other = build(env)
    rng = random.Random(7)
    written: list[StoredEvent] = []
    for turn in range(24):
        app = (ledger, other)[turn % 3 == 0]
        events = batch(rng.choice([1, 2, 5, 9, 17]))
        app.recorder.insert_events(events)
        written += events
        if turn == 11:
            with pytest.raises(IntegrityError):
                app.recorder.insert_events(batch(3) + [events[0]])  # a duplicate: all of it rolls back
    yield transparency_log(ledger, env), [leaf_hash(encode_leaf(e.originator_id, e.originator_version, e.topic,
                                                                 e.state)) for e in written]
    other.close()


def test_stored_tree_gives_the_reference_roots_and_proofs(stored):
    log, hashes = stored
    n = len(hashes)
    assert log.size() == n
    rng = random.Random(n)
    for size in sorted({1, 2, 15, 16, 17, n - 1, n, *rng.sample(range(1, n), 10)}):
        assert log.root(size) == reference_root(hashes[:size])
        for index in {0, size - 1, rng.randrange(size)}:
            assert log.inclusion_proof(index, size) == reference_inclusion(index, hashes[:size])
        old = rng.randrange(0, size + 1)
        assert log.consistency_proof(old, size) == reference_consistency(old, hashes[:size])


def test_only_nodes_from_the_stored_level_up_are_kept(stored):
    log, hashes = stored
    frontier, expected = Frontier(), set()
    for digest in hashes:
        expected |= {(lv, ix, h) for lv, ix, h in frontier.append(digest) if lv >= STORED_LEVEL}
    rows = {(lv, ix, bytes(h)) for lv, ix, h in log.rows("SELECT level, idx, hash FROM {nodes}")}
    assert rows == expected and len(rows) < len(hashes) / 8
    leaves = log.rows("SELECT leaf_index, leaf_hash FROM {leaves} ORDER BY leaf_index")
    assert [(i, bytes(h)) for i, h in leaves] == list(enumerate(hashes))
    assert log.verify().ok and log.verify(reference=True).ok
