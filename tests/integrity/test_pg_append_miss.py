"""PostgreSQL: an append whose cached head went stale (another process appended) carries the head
over the other processes' leaves that the append statement read back, without reading the stored
right edge; a process further behind than ``NEWER_LEAVES`` reads it; a one-trip append that missed
commits if it completes no node, and is refused (nothing written) and redone if it does. Either way
the log is the reference log."""

from __future__ import annotations

import hashlib
import random
import uuid

from eventsourcing.persistence import StoredEvent

from ledger.bootstrap import build, transparency_log
from ledger.integrity.leaf import encode_leaf
from ledger.integrity.merkle import leaf_hash
from ledger.keys import LogKeys
from ledger.pg_append import NEWER_LEAVES
from ledger.settings import Settings


def batch(n: int) -> list[StoredEvent]:
    oid = uuid.uuid4()
    return [StoredEvent(oid, k + 1, "domain.ticket:Ticket.Event", hashlib.sha256(b"%d" % k).digest())
            for k in range(n)]


def counting_loads(app) -> list[int]:
    loads: list[int] = []
    original = app.recorder._load_frontier

    def load(curs, size):
        loads.append(size)
        return original(curs, size)
    app.recorder._load_frontier = load
    return loads


def test_a_stale_head_is_carried_over_without_reading_the_right_edge(pg_url, tmp_path):
    env = {"CASELEDGER_DATABASE_URL": pg_url, "CASELEDGER_HOME": str(tmp_path / "home")}
    LogKeys.from_settings(Settings.from_environ(env)).init()
    apps = [build(env) for _ in range(3)]
    loads = [counting_loads(app) for app in apps]
    rng = random.Random(7)
    written: list[StoredEvent] = []
    try:
        for turn in range(60):
            app = apps[rng.randrange(3)] if turn >= 3 else apps[turn]
            events = batch(rng.choice([1, 1, 1, 2, 5, 16, 17, 40]))
            app.recorder.insert_events(events)
            written += events
        assert [len(seen) for seen in loads] == [0, 1, 1]  # only each one's first append: no head yet
        far = apps[0]
        for _ in range(NEWER_LEAVES // 100 + 1):  # the others append more than NEWER_LEAVES leaves
            written += (events := batch(100))
            apps[1].recorder.insert_events(events)
        far.recorder._head.fitted = True  # as if its plans had been fitting: the one-trip append is tried
        far.recorder.insert_events(events := batch(3))  # completes no node: committed, its head forgotten
        written += events
        assert loads[0] == []
        far.recorder.insert_events(events := batch(16))  # completes a node: the right edge is read
        assert loads[0] == [len(written)]
        written += events
        log = transparency_log(apps[0], env)
        leaves = log.rows("SELECT leaf_index, leaf_hash FROM {leaves} ORDER BY leaf_index")
        assert [index for index, _ in leaves] == list(range(len(written)))
        assert [bytes(h) for _, h in leaves] == [
            leaf_hash(encode_leaf(e.originator_id, e.originator_version, e.topic, e.state)) for e in written]
        assert log.verify().ok and log.verify(reference=True).ok
    finally:
        for app in apps:
            app.close()
