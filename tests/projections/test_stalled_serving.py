"""A stalled read model as the service shows it: read endpoints answer from the last good state and
say so in headers (never a 500), ``/readyz`` is not ready and names it, ``/metrics`` exposes it,
``caseledger projections status`` shows state and digest, and ``caseledger projections run``
keeps running the other read models — also after a restart (no crash loop)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from hostile import head, key_too_long, make_base, meta, missing_fields, place_hold, store_raw
from test_projection_crash import positions  # the runner's positions, read while it runs

from cli.main import main
from projections.catalog import NAMES, runner_for
from projections.store import ViewDatabase

pytestmark = pytest.mark.integration

CASELEDGER = str(Path(sys.executable).with_name("caseledger"))
#: What the missing-fields event stalls (test_hostile_events.py checks the whole list).
STALLED_BY_MISSING_FIELDS = {"ticket_list", "kpi_counters", "sla_clocks", "compliance_findings"}
TICKETS = "/views/tickets?as_of=2025-09-02T00:00:00%2B08:00"  # a fixed as_of: the same body, the same ETag


@pytest.fixture
def base(ledger, at) -> dict[str, str]:
    return make_base(ledger, at)


def test_read_endpoints_answer_from_the_last_good_state_and_say_so(ledger, base, api):
    bad = missing_fields(ledger, base)

    tickets = api.get(TICKETS, as_="admin")
    assert tickets.status_code == 200, tickets.json  # the ticket list stopped before the event
    assert int(tickets.headers["X-Read-Model-Position"]) == tickets.json["position"] < bad
    assert tickets.headers["X-Read-Model-Stalled"].startswith(f"ticket_list at {bad}: AttributeError")
    assert [t["ticket_id"] for t in tickets.json["items"]] == [base["ticket"]]

    complaints = api.get("/views/complaints", as_="admin")  # another read model: current, not stalled
    assert complaints.status_code == 200
    assert complaints.headers["X-Read-Model-Position"] == str(head(ledger)) == str(complaints.json["position"])
    assert "X-Read-Model-Stalled" not in complaints.headers

    kpis = api.get("/dashboards/kpis?from=2025-09-01&to=2025-09-02", as_="admin")
    assert kpis.status_code == 200 and kpis.headers["X-Read-Model-Stalled"].startswith(f"kpi_counters at {bad}")
    again = api.get(TICKETS, as_="admin", headers={"If-None-Match": tickets.headers["ETag"]})
    assert again.status_code == 304 and "X-Read-Model-Stalled" in again.headers

    for path in ("/compliance/findings", "/compliance/sla-clocks", "/compliance/sla-clocks/summary",
                 "/compliance/job-runs", "/holds", "/retention/records"):
        response = api.get(path, as_="compliance")
        assert response.status_code in (200, 503), (path, response.status_code, response.json)


def test_replay_shows_stored_text_as_it_is_where_read_models_hold_its_replacement(ledger, base, api):
    ticket = base["ticket"]
    store_raw(ledger, "domain.ticket:Ticket.Assigned", {"handler": "a\ud800", "team": "t\x00", "previous_handler": None,
                                                         "meta": meta("lead-wang", "team_lead")},
              originator_id=uuid.UUID(ticket), version=ledger.get("ticket", ticket).version + 1)
    timeline = api.get(f"/replay/ticket/{ticket}/timeline", as_="admin")
    assert timeline.status_code == 200  # before: 500 (the ETag's UTF-8 encoding of the lone surrogate)
    assert timeline.json["items"][-1]["data"]["team"] == "t\x00"
    assert b'"handler":"a\\ud800"' in timeline.get_data()  # escaped: the body stays valid UTF-8
    state = api.get(f"/replay/ticket/{ticket}/state?position={head(ledger)}", as_="admin")
    assert state.status_code == 200 and state.json["state"]["team"] == "t\x00"
    listed = api.get(TICKETS, as_="admin")
    assert (listed.json["items"][0]["handler"], listed.json["items"][0]["team"]) == ("a\ufffd", "t\ufffd")


def test_readiness_and_metrics_name_the_stalled_read_models(ledger, base, api):
    assert api.get("/readyz", as_=None).status_code == 200
    bad = missing_fields(ledger, base)
    assert api.get("/views/complaints", as_="admin").status_code == 200  # catches up: the stalls are found

    ready = api.get("/readyz", as_=None)
    assert ready.status_code == 503 and ready.content_type == "application/problem+json"
    assert ready.json["checks"]["read_models"] == "stalled: " + ", ".join(sorted(STALLED_BY_MISSING_FIELDS))
    assert f"read model ticket_list is stalled at log position {bad}" in ready.json["detail"]
    assert "caseledger projections rebuild ticket_list" in ready.json["detail"]

    text = api.get("/metrics", as_=None).get_data(as_text=True)
    for name in NAMES:
        flag = 1.0 if name in STALLED_BY_MISSING_FIELDS else 0.0
        assert f'caseledger_projection_stalled{{projection="{name}"}} {flag}' in text
    assert f'caseledger_projection_stalled_position{{projection="ticket_list"}} {float(bad)}' in text
    assert 'caseledger_projection_stalled_position{projection="complaint_list"}' not in text


def test_a_use_case_on_a_stalled_read_model_is_a_503_naming_it(ledger, at, base, api):
    place_hold(ledger, at, base["customer"], authority="court order 17", reason="litigation")
    assert api.get("/holds", as_="records").status_code == 200
    bad = key_too_long(ledger, base)  # stalls the retention read model, where holds are read from

    # Retention must not decide on holds it may not have seen: refused, with the reason.
    for path in ("/holds", "/retention/records"):
        response = api.get(path, as_="records")
        assert response.status_code == 503 and response.content_type == "application/problem+json", path
        assert response.json["read_model"] == "retention" and response.json["position"] == bad
        assert "caseledger projections rebuild retention" in response.json["detail"]
    assert api.get("/views/tickets", as_="admin").status_code == 200


def test_status_shows_position_lag_state_and_digest(ledger, env, base):
    bad = missing_fields(ledger, base)
    runner = runner_for(ledger)
    runner.catch_up(strict=False)
    digests = runner.digests()
    runner.close()

    result = CliRunner().invoke(main, ["projections", "status", "--json"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = {row["read_model"]: row for row in map(json.loads, result.output.splitlines())}
    assert set(rows) == set(NAMES)
    for name, row in rows.items():
        assert row["head"] == head(ledger) and row["lag"] == row["head"] - row["position"]
        assert row["digest"] == digests[name]
        if name in STALLED_BY_MISSING_FIELDS:
            assert row["state"] == "stalled" and row["stall"]["position"] == bad and row["position"] < bad
            assert row["stall"]["reason"].startswith("AttributeError")
        else:
            assert row["state"] == "running" and row["stall"] is None and row["lag"] == 0

    table = CliRunner().invoke(main, ["projections", "status"], env={**env, "COLUMNS": "400"})
    assert table.exit_code == 0
    assert f"stalled at log position {bad}" in table.output and "running" in table.output
    assert digests["event_counts"] in table.output
    assert "caseledger projections rebuild ticket_list" in table.output


# -- the projection process --------------------------------------------------------------------
def wait_for(condition, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the runner exited: {proc.communicate()}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_projection_process_keeps_running_the_others_and_restarts_cleanly(ledger, env, at, base):
    place_hold(ledger, at, base["customer"], authority="court\x00 17", reason="lit\x00igation")  # the defect
    bad = missing_fields(ledger, base)
    db = ViewDatabase.for_ledger(ledger)
    proc_env = {**os.environ, **env, "COLUMNS": "300"}
    healthy = set(NAMES) - STALLED_BY_MISSING_FIELDS
    for attempt in ("first start", "restart"):
        proc = subprocess.Popen([CASELEDGER, "projections", "run", "--poll", "0.1"], env=proc_env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ledger.register_customer(at(50), kind="individual", tier="general", contact={})  # new work after the stall
        target = head(ledger)
        wait_for(lambda: {n for n, p in positions(db).items() if p == target} >= healthy, proc)
        time.sleep(0.3)  # it stays up
        assert proc.poll() is None, attempt
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, (attempt, err)
        assert "ticket_list" in err and f"log position {bad}" in err, (attempt, err)
        assert all(positions(db)[name] < bad for name in STALLED_BY_MISSING_FIELDS)
    db.close()
