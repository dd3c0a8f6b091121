"""RowCache: which rows a batch inserts as new and which it upserts, and that both land (both backends)."""

from __future__ import annotations

import pytest

from projections import rowcache
from projections.rowcache import RowCache
from projections.store import Table, ViewDatabase

TABLE = Table("rm_test_rows", columns=(("k", "TEXT"), ("n", "BIGINT")), key=("k",))


@pytest.fixture
def db(ledger):
    db = ViewDatabase.for_ledger(ledger)
    db.create_tables([TABLE])
    yield db
    db.close()


def commit(db: ViewDatabase, cache: RowCache) -> list[tuple[list, list]]:
    changed = cache.changes()
    with db.transaction() as cur:
        cache.write(cur, changed)
    return [(list(inserted), list(upserted), deleted) for _, inserted, upserted, deleted in changed]


def stored(db: ViewDatabase) -> dict[str, int]:
    with db.reading() as cur:
        return dict(cur.execute(f"SELECT k, n FROM {TABLE.name}").fetchall())


def test_a_rebuild_inserts_what_it_never_held_and_upserts_what_it_let_go(db):
    cache = RowCache(None, [TABLE], complete=True)
    for k in ("a", "b"):
        assert cache.get(TABLE.name, k) is None
        cache.put(TABLE.name, {"k": k, "n": 1})
    assert commit(db, cache) == [([("a", 1), ("b", 1)], [], [])]
    cache.trim(0)  # lets go of every row: they are in the database now
    with db.reading() as cur:
        cache.cur = cur
        a = cache.get(TABLE.name, "a")  # read back, since the cache let go of it
    a["n"] = 2
    cache.put(TABLE.name, a)
    cache.put(TABLE.name, {"k": "b", "n": 3})  # let go of, not read back: may exist
    cache.put(TABLE.name, {"k": "c", "n": 1})
    assert commit(db, cache) == [([("c", 1)], [("a", 2), ("b", 3)], [])]
    assert stored(db) == {"a": 2, "b": 3, "c": 1}


def test_an_incremental_batch_inserts_only_rows_it_looked_for_and_did_not_find(db):
    with db.transaction() as cur:
        cur.execute(f"INSERT INTO {TABLE.name} (k, n) VALUES ('old', 1)")
    cache = RowCache(None, [TABLE], complete=False)
    with db.reading() as cur:
        cache.cur = cur
        old = cache.get(TABLE.name, "old")
        assert cache.get(TABLE.name, "new") is None
    old["n"] += 1
    cache.put(TABLE.name, old)
    cache.put(TABLE.name, {"k": "new", "n": 1})
    cache.put(TABLE.name, {"k": "unknown", "n": 1})  # never looked for: upserted
    assert commit(db, cache) == [([("new", 1)], [("old", 2), ("unknown", 1)], [])]
    cache.put(TABLE.name, {"k": "new", "n": 5})  # written by the last batch: now it exists
    assert commit(db, cache) == [([], [("new", 5)], [])]
    assert stored(db) == {"old": 2, "new": 5, "unknown": 1}


def test_deleted_rows_leave_the_database_and_rows_never_written_cost_nothing(db):
    cache = RowCache(None, [TABLE], complete=True)
    for k in ("kept", "gone", "back"):
        cache.put(TABLE.name, {"k": k, "n": 1})
    cache.put(TABLE.name, {"k": "brief", "n": 1})
    cache.delete(TABLE.name, "brief")  # put and deleted in one batch: never written
    cache.delete(TABLE.name, "never")  # a complete cache never held it: nothing to delete
    assert commit(db, cache) == [([("back", 1), ("gone", 1), ("kept", 1)], [], [])]
    cache.delete(TABLE.name, "gone")
    cache.delete(TABLE.name, "back")
    cache.put(TABLE.name, {"k": "back", "n": 2})  # deleted, then put again: still in the database
    assert cache.peek(TABLE.name, "gone") is None
    assert commit(db, cache) == [([], [("back", 2)], [("gone",)])]
    assert stored(db) == {"kept": 1, "back": 2}
    incremental = RowCache(None, [TABLE], complete=False)
    incremental.delete(TABLE.name, "kept")  # not cached: may exist, so it is deleted
    assert commit(db, incremental) == [([], [], [("kept",)])]
    assert stored(db) == {"back": 2}


def test_what_a_rebuild_let_go_of_is_remembered_in_fixed_memory(db):
    cache = RowCache(None, [TABLE], complete=True)
    for n in range(50_000):
        cache.put(TABLE.name, {"k": f"k{n}", "n": n})
    commit(db, cache)
    cache.trim(0)  # lets go of the older half
    remembered = cache._by_name[TABLE.name].let_go
    assert len(remembered.bits) == rowcache.LET_GO_BITS // 8  # the same for 50 thousand keys or 50 million
    assert all(hash((f"k{n}",)) in remembered for n in range(0, 25_000, 97))  # none let go of is forgotten


def test_a_new_key_sharing_a_bit_with_one_let_go_costs_a_query_and_is_still_right(db, monkeypatch):
    monkeypatch.setattr(rowcache, "LET_GO_BITS", 8)
    cache = RowCache(None, [TABLE], complete=True)
    for k in "abcdefghij":
        cache.put(TABLE.name, {"k": k, "n": 1})
    commit(db, cache)
    cache.trim(0)
    cache._by_name[TABLE.name].let_go.bits[:] = b"\xff"  # all 8 bits set: every key shares one with a key let go
    with db.reading() as cur:
        cache.cur = cur
        assert cache.get(TABLE.name, "new") is None  # looked up (the bit is set), and not there
        assert cache.get(TABLE.name, "a")["n"] == 1  # let go of, read back
    cache.put(TABLE.name, {"k": "new", "n": 7})
    cache.put(TABLE.name, {"k": "other", "n": 8})  # never looked for, its bit set: may exist, so upserted
    assert commit(db, cache) == [([("new", 7)], [("other", 8)], [])]
    assert stored(db)["new"] == 7 and stored(db)["other"] == 8
