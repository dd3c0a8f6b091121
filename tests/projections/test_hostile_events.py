"""No stored event can break a read model or the service (issue #18, items 1 and 2).

Hostile events are stored *below* the API — through the domain without the API's validation, or
straight through the ledger's recorder — on both backends: NUL and lone surrogates in text,
absurdly long text, numbers out of range, an unknown topic, a payload missing fields, a state
that is not JSON. Each read model either stores what it can (text made storable: NUL and lone
surrogates become U+FFFD, the log keeps the event as it was) or stalls alone at the event, with
position and reason recorded durably, while the others go on.

The defect this started from: one legal hold with NUL in ``authority`` crashed the projection
runner on PostgreSQL on every start, and with it every read-model endpoint (500).
"""

from __future__ import annotations

import uuid

import pytest
from hostile import (counted, head, hold_fields, hold_row, key_too_long, make_base, meta, missing_fields, not_json,
                     number_out_of_range, place_hold, store_raw, unknown_topic)

from projections.cases import TicketList
from projections.catalog import NAMES, runner_for
from projections.runtime import ProjectionRunner, ProjectionStalled

pytestmark = pytest.mark.integration


@pytest.fixture
def base(ledger, at) -> dict[str, str]:
    return make_base(ledger, at)


# -- the defect: NUL in a legal hold ------------------------------------------------------------
def test_nul_in_a_legal_hold_is_stored_as_a_replacement_and_the_log_keeps_it(ledger, at, base, runner):
    hold = place_hold(ledger, at, base["customer"], authority="court\x00 17", reason="lit\x00igation")

    runner.catch_up()  # strict: raises if any read model stalled. Before: psycopg.DataError on PostgreSQL

    assert runner.stalls() == {}
    assert set(runner.positions().values()) == {head(ledger)}
    row = hold_row(runner, hold)
    assert (row["authority"], row["reason"]) == ("court\ufffd 17", "lit\ufffdigation")
    stored = ledger.get("hold", hold)  # the event itself is untouched
    assert (stored.authority, stored.reason) == ("court\x00 17", "lit\x00igation")
    incremental = runner.digests()
    rebuilt = runner_for(ledger)
    rebuilt.rebuild(workers=1)
    assert rebuilt.digests() == incremental  # the replacement is the same every time
    rebuilt.close()


def test_nul_in_a_legal_hold_leaves_every_read_endpoint_and_readiness_working(ledger, at, base, api):
    place_hold(ledger, at, base["customer"], authority="court\x00 17", reason="lit\x00igation")
    for path, caller in (("/views/tickets", "admin"), ("/views/complaints", "admin"),
                         ("/dashboards/kpis?from=2025-09-01&to=2025-09-02", "admin"), ("/holds", "records")):
        response = api.get(path, as_=caller)
        assert response.status_code == 200, (path, response.json)  # before: 500 on PostgreSQL
    assert response.json["items"][0]["authority"] == "court\ufffd 17"
    listed = api.get("/views/tickets", as_="admin")
    assert listed.headers["X-Read-Model-Position"] == str(head(ledger))
    assert "X-Read-Model-Stalled" not in listed.headers
    assert api.get("/readyz", as_=None).status_code == 200


def test_lone_surrogates_and_absurdly_long_text_are_stored(ledger, base, runner):
    subject = base["customer"]
    hold = uuid.uuid4()
    store_raw(ledger, "domain.holds:LegalHold.Placed",
              hold_fields(subject, authority="a\ud800b\udfffc", reason="x" * 1_000_000, meta={**meta(), "actor_id": "\udc80"}),
              originator_id=hold)
    runner.catch_up()
    assert runner.stalls() == {}
    row = hold_row(runner, str(hold))
    assert row["authority"] == "a\ufffdb\ufffdc" and row["placed_by"] == "\ufffd"
    assert len(row["reason"]) == 1_000_000
    assert set(runner.positions().values()) == {head(ledger)}


# -- everything else: handled, or stalled alone -------------------------------------------------
#: Each hostile event, and exactly the read models it stalls (the same on both backends).
HOSTILE = {
    "unknown topic": (unknown_topic, set()),
    "missing fields": (missing_fields, {"ticket_list", "kpi_counters", "sla_clocks", "compliance_findings"}),
    "number out of range": (number_out_of_range, {"complaint_list"}),
    "index entry too long": (key_too_long, {"retention"}),
    "state is not JSON": (not_json, {"ticket_list", "kpi_counters", "sla_clocks", "compliance_findings",
                                     "retention"}),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_event_stalls_only_the_read_models_that_cannot_apply_it(ledger, at, base, runner, case):
    write, expected = HOSTILE[case]
    runner.catch_up()
    before = runner.positions()
    bad = write(ledger, base)

    runner.catch_up(strict=False)  # never raises for an event

    stalled = runner.stalls()
    assert set(stalled) == expected, {name: s.reason for name, s in stalled.items()}
    positions = runner.positions()
    for name in NAMES:
        if name in stalled:
            assert stalled[name].position == bad and stalled[name].reason
            assert before[name] <= positions[name] < bad  # everything before it, nothing from it on
        else:
            assert positions[name] == bad
    if case == "unknown topic":  # no read model has a handler for a class that does not exist; it is counted
        assert counted(runner, "domain.teleport:Ticket.Teleported") == 1

    # The others keep going; the stalled ones stay where they are, whoever runs them.
    ledger.register_customer(at(30), kind="individual", tier="general", contact={})
    again = runner_for(ledger, batch_size=3)
    again.catch_up(strict=False)
    positions = again.positions()
    assert {name for name in NAMES if positions[name] == head(ledger)} == set(NAMES) - expected
    assert again.stalls() == stalled
    if expected:
        with pytest.raises(ProjectionStalled) as refused:  # strict callers do not act on a stalled model
            again.catch_up()
        assert refused.value.projection in expected and refused.value.position == bad
    again.close()


def test_an_undecodable_event_is_counted_under_its_stored_topic(ledger, base, runner):
    not_json(ledger, base)
    runner.catch_up(strict=False)
    assert counted(runner, "domain.ticket:Ticket.Classified") == 2  # the base's and the broken one


# -- repair: fix the code, rebuild --------------------------------------------------------------
def test_a_rebuild_after_the_fix_clears_the_stall(ledger, at, base, runner, monkeypatch):
    bad = missing_fields(ledger, base)
    runner.catch_up(strict=False)
    assert runner.stalls()["ticket_list"].position == bad

    with pytest.raises(ProjectionStalled) as still:  # rebuilt without a fix: stalls again, and says so
        runner.rebuild(["ticket_list"])
    assert still.value.position == bad and "caseledger projections rebuild ticket_list" in str(still.value)
    assert runner.stalls()["ticket_list"].position == bad

    original = TicketList.on_Ticket_Classified

    def tolerant(self, e, position, rows):  # the "fix": a classification without values changes nothing
        if hasattr(e, "priority") and hasattr(e, "complexity"):
            original(self, e, position, rows)

    monkeypatch.setattr(TicketList, "on_Ticket_Classified", tolerant)
    fixed = runner_for(ledger)
    fixed.rebuild(["ticket_list"])
    assert "ticket_list" not in fixed.stalls()
    assert fixed.positions()["ticket_list"] == head(ledger)
    ledger.open_ticket(at(40), customer_id=base["customer"], channel="web")
    fixed.catch_up(strict=False)  # incrementally, then from zero: the same content
    incremental = fixed.digests()["ticket_list"]
    fixed.rebuild(["ticket_list"])
    assert fixed.digests()["ticket_list"] == incremental
    fixed.close()


# -- errors that may pass are not stalls ---------------------------------------------------------
class FlakyTicketList(TicketList):
    name = "flaky_ticket_list"

    def on_Ticket_Classified(self, e, position, rows):
        import sqlite3

        raise sqlite3.OperationalError("database is locked")


def test_a_passing_database_error_stops_the_batch_without_stalling(ledger, base):
    flaky = ProjectionRunner(ledger, [FlakyTicketList(ledger)], batch_size=50)
    flaky.ensure_tables()
    with pytest.raises(Exception, match="database is locked"):
        flaky.catch_up(strict=False)
    assert flaky.stalls() == {} and flaky.positions()["flaky_ticket_list"] == 0  # retried next time, whole
    flaky.close()


def test_a_case_whose_history_the_code_cannot_fold_is_a_named_409_not_a_500(ledger, base, api):
    """Missing fields the domain needs (not only a read model): the case cannot be reconstructed,
    so reading it or acting on it is refused naming the rule; the rest of the ledger serves on."""
    store_raw(ledger, "domain.ticket:Ticket.Assigned", {"meta": meta()},  # no handler, no team
              originator_id=uuid.UUID(base["ticket"]), version=ledger.get("ticket", base["ticket"]).version + 1)
    for response in (api.get(f"/tickets/{base['ticket']}", as_="admin"),
                     api.post(f"/tickets/{base['ticket']}/start-work", as_="lead", json={})):
        assert response.status_code == 409, response.get_data(as_text=True)
        assert response.json["rule"] == "history.unreadable" and base["ticket"] in response.json["detail"]
    assert api.get(f"/complaints/{base['complaint']}", as_="admin").status_code == 200
