"""Projections decode the log without eventsourcing's JSON hooks, into the very events the mapper gives."""

from __future__ import annotations

from eventsourcing.persistence import StoredEvent

from projections.decode import EventDecoder
from projections.store import ViewDatabase


def test_lean_decoding_gives_the_mappers_events(ledger, scenario):
    decoder = EventDecoder(ledger)
    assert decoder.lean
    db = ViewDatabase.for_ledger(ledger)
    rows = db.notifications(ledger.recorder.events_table_name, 0, 10_000)
    db.close()
    assert [r[0] for r in rows] == [n.id for n in ledger.recorder.select_notifications(start=1, limit=10_000)]
    mapper = ledger.facts_mapper()
    for position, topic, event in decoder.events(rows):
        _, oid, version, _, state = next(r for r in rows if r[0] == position)
        expected = mapper.to_domain_event(StoredEvent(oid, version, topic, state))
        assert type(event) is type(expected) and vars(event) == vars(expected)


def test_anything_else_goes_through_the_mapper(ledger, scenario):
    decoder = EventDecoder(ledger)
    db = ViewDatabase.for_ledger(ledger)
    position, oid, version, topic, state = db.notifications(ledger.recorder.events_table_name, 0, 1)[0]
    db.close()
    # a second transcoded value: the lean path must not leave it as a {"_type_": …} dict
    extra = state[:-1] + b',"later":{"_type_":"datetime_iso","_data_":"2025-09-01T09:00:00+08:00"}}'
    event = decoder.event(oid, version, topic, extra)
    assert vars(event)["later"].isoformat() == "2025-09-01T09:00:00+08:00"
    [(_, _, in_batch)] = decoder.events([(position, oid, version, topic, extra)])
    assert vars(in_batch) == vars(event)
    # not JSON orjson takes (NaN): the mapper's json decodes it
    odd = state[:-1] + b',"odd":NaN}'
    [(_, _, with_nan)] = decoder.events([(position, oid, version, topic, odd)])
    assert vars(with_nan)["odd"] != vars(with_nan)["odd"]  # NaN
    assert vars(decoder.event(oid, version, topic, state)) == vars(
        ledger.facts_mapper().to_domain_event(StoredEvent(oid, version, topic, state)))
