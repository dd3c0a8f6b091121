"""`caseledger import-history` on both backends: a previous helpdesk's history — customers, an
interaction, tickets and a complaint with their whole lifecycles, feedback, a survey — imported at
its original times, once, all or nothing; SLA clocks and retention then judge those times."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from cli.main import main
from domain.context import Context
from ledger.bootstrap import build
from projections.sla_clocks import SLA_CLOCK_TABLE
from projections.timeutil import parse
from services.history_import import case_id
from services.retention import Retention
from services.sla import SlaMonitor

CST = timezone(timedelta(hours=8))


def at(year: int, month: int, day: int, hour: int = 9, minute: int = 0) -> str:
    return datetime(year, month, day, hour, minute, tzinfo=CST).isoformat()


def step(action: str, when: str, actor: str | None = None, **args: object) -> dict:
    return {"action": action, "at": when, **({"actor": actor} if actor else {}), **args}


CUSTOMER_1 = {"kind": "customer", "ref": "C-1", "at": at(2019, 2, 1), "customer_kind": "individual", "tier": "general",
              "contact": {"name": "王芳", "phone": "13800138000"}, "consents": {"marketing": False}}
CUSTOMER_2 = {"kind": "customer", "ref": "C-2", "at": at(2024, 5, 1), "customer_kind": "enterprise", "tier": "vip",
              "contact": {"name": "Acme Ltd", "email": "ops@acme.example"},
              "steps": [step("change_tier", at(2024, 6, 1), "Zhang Min", tier="important")]}
CALL = {"kind": "interaction", "ref": "CALL-7", "at": at(2019, 3, 4, 9, 0), "channel": "phone", "direction": "inbound",
        "customer": "C-1", "content": "my bill is wrong",
        "steps": [step("register", at(2019, 3, 4, 9, 1), "Li Wei", agent_id="Li Wei"),
                  step("route", at(2019, 3, 4, 9, 2), "Li Wei", queue="billing"),
                  step("close", at(2019, 3, 4, 9, 4), "Li Wei", resolved_on_first_contact=False)]}
# Received on 4 March, resolved three days later: the 48-hour resolution clock (003 §1.2) was missed.
TICKET_1 = {"kind": "ticket", "ref": "T-1001", "at": at(2019, 3, 4, 9, 5), "customer": "C-1", "channel": "phone",
            "actor": "Li Wei", "summary": "bill too high",
            "steps": [step("respond_first", at(2019, 3, 4, 9, 10), "Li Wei", message="we are looking into it"),
                      step("classify", at(2019, 3, 4, 10, 0), "Zhang Min", priority="normal", complexity="general",
                           high_risk=False),
                      step("assign", at(2019, 3, 4, 10, 5), "Zhang Min", handler="Chen Jie", team="billing"),
                      step("start_work", at(2019, 3, 4, 11, 0), "Chen Jie"),
                      step("resolve", at(2019, 3, 7, 9, 5), "Chen Jie", resolution="refunded the difference"),
                      step("feed_back_result", at(2019, 3, 7, 10, 0), "Chen Jie", channel="phone"),
                      step("record_acceptance", at(2019, 3, 7, 10, 5), "Chen Jie", accepted=True),
                      step("close", at(2019, 3, 7, 10, 6), "Chen Jie"),
                      step("archive", at(2019, 3, 8, 9, 0), "Records Sun")]}
TICKET_2 = {"kind": "ticket", "ref": "T-2040", "at": at(2024, 7, 1, 9, 0), "customer": "C-2", "channel": "email",
            "actor": "Wu Lei",
            "steps": [step("respond_first", at(2024, 7, 1, 9, 5), "Wu Lei"),
                      step("classify", at(2024, 7, 1, 9, 30), "Zhang Min", priority="urgent", complexity="general",
                           high_risk=False),
                      step("assign", at(2024, 7, 1, 9, 35), "Zhang Min", handler="Wu Lei", team="enterprise"),
                      step("start_work", at(2024, 7, 1, 10, 0), "Wu Lei"),
                      step("pause_clock", at(2024, 7, 1, 12, 0), "Wu Lei", reason="waiting for the customer's logs"),
                      step("resume_clock", at(2024, 7, 2, 12, 0), "Wu Lei"),
                      step("resolve", at(2024, 7, 2, 15, 0), "Wu Lei"),
                      step("feed_back_result", at(2024, 7, 2, 16, 0), "Wu Lei", channel="email"),
                      step("record_acceptance", at(2024, 7, 3, 9, 0), "Wu Lei", accepted=False, comment="still broken"),
                      step("resolve", at(2024, 7, 3, 14, 0), "Wu Lei"),
                      step("feed_back_result", at(2024, 7, 3, 14, 30), "Wu Lei", channel="email"),
                      step("record_acceptance", at(2024, 7, 4, 9, 0), "Wu Lei", accepted=True),
                      step("close", at(2024, 7, 4, 9, 1), "Wu Lei")]}
# Accepted in March 2019 and archived that month: its 5-year complaint file period (003 §2.4.1) is over.
COMPLAINT = {"kind": "complaint", "ref": "K-12", "at": at(2019, 3, 5, 14, 0), "customer": "C-1", "ticket": "T-1001",
             "channel": "phone", "description": "charged twice",
             "steps": [step("classify", at(2019, 3, 5, 15, 0), "Gao Yan", complaint_type="process", level=2),
                       step("start_investigation", at(2019, 3, 5, 16, 0), "Gao Yan"),
                       step("add_evidence", at(2019, 3, 6, 10, 0), "Gao Yan", kind="billing_record",
                            reference="INV-2019-0301"),
                       step("escalate", at(2019, 3, 6, 11, 0), "Gao Yan", to_rung="team_lead",
                            reason="amount above the frontline limit"),
                       step("decide_remedy", at(2019, 3, 7, 9, 0), "Zhang Min", kind="compensation", amount="200.00"),
                       step("notify_customer", at(2019, 3, 12, 9, 0), "Gao Yan", channel="phone"),
                       step("record_evaluation", at(2019, 3, 13, 9, 0), "Gao Yan", satisfied=True, score=4),
                       step("archive", at(2019, 3, 20, 9, 0), "Records Sun"),
                       step("record_root_cause", at(2019, 4, 2, 9, 0), "Gao Yan", category="billing_system")]}
FEEDBACK = {"kind": "feedback", "ref": "F-3", "at": at(2024, 8, 1, 8, 0), "customer": "C-2",
            "feedback_kind": "suggestion", "channel": "web", "content": "a dark mode, please",
            "steps": [step("respond", at(2024, 8, 1, 12, 0), "Wu Lei"),
                      step("reply", at(2024, 8, 2, 9, 0), "Wu Lei", note="on the roadmap")]}
SURVEY = {"kind": "survey", "ticket": "T-1001", "at": at(2019, 3, 7, 12, 0), "csat": 4, "nps": 8,
          "comment": "quick refund"}
HISTORY = [CUSTOMER_1, CUSTOMER_2, CALL, TICKET_1, TICKET_2, COMPLAINT, FEEDBACK, SURVEY]


def ndjson(records: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


@pytest.fixture
def importer(env, token_env):
    """A new ledger and a records manager's environment."""
    created = CliRunner().invoke(main, ["db", "init"], env=env)
    assert created.exit_code == 0, created.output
    return token_env("records_manager", actor="records-liu")


def run(env: dict[str, str], *args: str):
    result = CliRunner().invoke(main, list(args), env=env)
    assert "Traceback" not in result.output, result.output
    return result


def stored_events(env: dict[str, str]) -> list[dict]:
    listed = run(env, "events", "--json", "--limit", "100000")
    assert listed.exit_code == 0, listed.output
    return [json.loads(line) for line in listed.stdout.splitlines()]


def test_history_imports_once_with_original_times_and_the_importer_as_actor(importer, env, tmp_path):
    path = tmp_path / "helpdesk.ndjson"
    path.write_bytes(ndjson(HISTORY))
    dry = run(importer, "import-history", str(path), "--dry-run")
    assert dry.exit_code == 0 and "would import 8" in dry.output, dry.output
    before = stored_events(importer)

    done = run(importer, "import-history", str(path))
    assert done.exit_code == 0, done.output
    assert "imported 8 (45 events), skipped 0" in done.output
    again = run(importer, "import-history", str(path))
    assert again.exit_code == 0 and "imported 0 (0 events), skipped 8" in again.output, again.output

    events = stored_events(importer)[len(before):]
    assert len(events) == 45  # the dry run and the re-import wrote nothing
    more = tmp_path / "helpdesk-2.ndjson"  # a later export: the same history and one more case
    more.write_bytes(ndjson([*HISTORY, dict(FEEDBACK, ref="F-4", steps=[])]))
    added = run(importer, "import-history", str(more))
    assert added.exit_code == 0 and "imported 1 (1 events), skipped 8" in added.output, added.output
    source = f"{path} sha256:{hashlib.sha256(path.read_bytes()).hexdigest()}"
    for event in events:
        meta = event["meta"]
        assert meta["imported"] == source and meta["actor_id"] == "records-liu", event
        assert meta["actor_role"] == "records_manager" and meta["via"] == "cli"
        assert datetime.fromisoformat(meta["occurred_at"]).year in (2019, 2024)
    ticket = [e for e in events if e["aggregate_id"] == str(case_id("ticket", "T-1001"))]
    assert [e["type"] for e in ticket] == ["Received", "FirstResponded", "Classified", "Assigned", "WorkStarted",
                                          "Resolved", "ResultFedBack", "AcceptanceRecorded", "Closed", "Archived"]
    assert ticket[0]["meta"]["occurred_at"] == TICKET_1["at"]
    # the helpdesk's names go where the domain has a field for the person, never into the actor
    assert ticket[0]["data"]["first_contact_owner"] == "Li Wei" and ticket[3]["data"]["handler"] == "Chen Jie"
    interaction = [e for e in events if e["aggregate_id"] == str(case_id("interaction", "CALL-7"))]
    assert interaction[1]["data"]["agent_id"] == "Li Wei"
    assert {e["meta"]["actor_id"] for e in events} == {"records-liu"}

    assert run(importer, "checkpoint").exit_code == 0
    verified = run(importer, "verify")
    assert verified.exit_code == 0 and "OK" in verified.output, verified.output


def test_sla_clocks_and_retention_run_on_the_imported_times(importer, env, tmp_path):
    path = tmp_path / "helpdesk.ndjson"
    path.write_bytes(ndjson(HISTORY))
    assert run(importer, "import-history", str(path)).exit_code == 0
    ticket, complaint = str(case_id("ticket", "T-1001")), str(case_id("complaint", "K-12"))
    received = datetime.fromisoformat(TICKET_1["at"])

    ledger = build(env)
    monitor = SlaMonitor(ledger)
    try:
        now = datetime.now(timezone.utc)
        monitor.run(Context(actor_id="sla-job", actor_role="service", occurred_at=now, request_id="sla-1"))
        with monitor.runner.db.reading() as cur:
            rows = cur.execute(f"SELECT case_id, clock_key, status, deadline, breached, breached_at "
                               f"FROM {SLA_CLOCK_TABLE.name}").fetchall()
        clocks = {(case, key): (status, deadline, breached, breached_at)
                  for case, key, status, deadline, breached, breached_at in rows}
        status, deadline, breached, breached_at = clocks[(ticket, "ticket.resolution")]
        assert status == "missed" and parse(deadline) == received + timedelta(hours=48)  # resolved after 72 h
        assert breached and parse(breached_at) == received + timedelta(hours=48)
        assert clocks[(ticket, "ticket.first_response")][0] == "met"  # 5 minutes, within 15
        assert clocks[(ticket, "ticket.acceptance")][0] == "met"
        assert clocks[(complaint, "complaint.initial_handling")][0] == "met"  # investigating after 2 h
        assert clocks[(complaint, "complaint.closed_loop")][0] == "missed"  # notified after 7 days
        paused = clocks[(str(case_id("ticket", "T-2040")), "ticket.resolution")]
        assert paused[0] == "met"  # 30 h from receipt, minus the 24 h paused
    finally:
        monitor.close()
        ledger.close()

    report = run(importer, "retention", "report", "--json")
    assert report.exit_code == 0, report.output
    customer_1 = str(case_id("customer", "C-1"))
    due = next(r for r in json.loads(report.stdout) if r["subject"] == customer_1)
    assert due["disposable"], due  # every record of the 2019 customer is past its period
    kept = {r["kind"]: r for r in due["records"]}
    assert kept["complaint"]["record_class"] == "complaint_file"
    # archived on 20 March 2019: five years, due at the start of the day after (a working day)
    assert datetime.fromisoformat(kept["complaint"]["due_at"]) == datetime(2024, 3, 21, tzinfo=CST)

    ledger = build(env)
    retention = Retention(ledger)
    try:
        rows = {row["record_id"]: row for row in retention.records(subject=customer_1)}
        assert rows[complaint]["trigger_milestone"] == "complaint.archived"
        assert parse(rows[complaint]["trigger_at"]) == datetime.fromisoformat(at(2019, 3, 20))
    finally:
        retention.close()
        ledger.close()


BAD_LINES = {  # the line, what it becomes, what its refusal says, the lines refused with it (they refer to it)
    "bad vocabulary": (3, dict(TICKET_1, channel="fax"), "'fax'", [4, 6]),
    "out-of-order times": (3, dict(TICKET_1, steps=[TICKET_1["steps"][1], TICKET_1["steps"][0]]),
                           "rule import.time_order", [4, 6]),
    "a future time": (4, dict(COMPLAINT, at=(datetime.now(CST) + timedelta(days=2)).isoformat()),
                      "rule import.future_time", []),
    "an unknown customer": (5, dict(FEEDBACK, customer="C-404"), "unknown customer reference 'C-404'", []),
    "invalid UTF-8": (6, None, "rule import.utf8", []),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_one_bad_line_refuses_the_whole_file(importer, env, tmp_path, case):
    number, bad, expected, dependents = BAD_LINES[case]
    records = [CUSTOMER_1, CUSTOMER_2, TICKET_1, COMPLAINT, FEEDBACK, SURVEY]
    lines = ndjson(records).split(b"\n")
    lines[number - 1] = (json.dumps(bad, ensure_ascii=False).encode("utf-8") if bad is not None
                         else json.dumps(SURVEY).encode("utf-8").replace(b'"quick', b'"\xff\xfequick'))
    path = tmp_path / "bad.ndjson"
    path.write_bytes(b"\n".join(lines))
    before = stored_events(importer)

    refused = run(importer, "import-history", str(path))
    assert refused.exit_code == 1, refused.output
    errors = refused.stderr.splitlines()
    assert errors[0].startswith(f"error: line {number}: ") and expected in errors[0], errors
    for error, dependent in zip(errors[1:], dependents):
        assert error.startswith(f"error: line {dependent}: ticket 'T-1001' (line {number}) was refused"), errors
    assert errors[1 + len(dependents):] == [f"error: {1 + len(dependents)} of 6 lines refused; nothing was imported"]
    assert stored_events(importer) == before


def test_refusals_name_the_domain_rule(importer, env, tmp_path):
    reviewed = dict(TICKET_1, ref="T-9", steps=[
        step("classify", at(2019, 3, 4, 10), priority="normal", complexity="complex", high_risk=True),
        step("assign", at(2019, 3, 4, 10, 5), handler="Chen Jie", team="billing"),
        step("start_work", at(2019, 3, 4, 11)),
        step("resolve", at(2019, 3, 5, 11), "Chen Jie"),
        step("review", at(2019, 3, 5, 12), "Chen Jie", approved=True)])  # the resolver reviewing himself
    records = [CUSTOMER_1, dict(TICKET_1, steps=[step("close", at(2019, 3, 5))]), reviewed,
               dict(SURVEY, ticket="T-9"), dict(CUSTOMER_1, at=at(2019, 1, 1)), {"kind": "order", "ref": "X"}]
    path = tmp_path / "rules.ndjson"
    path.write_bytes(ndjson(records))
    refused = run(importer, "import-history", str(path))
    assert refused.exit_code == 1
    errors = refused.stderr.splitlines()
    assert errors[0].startswith("error: line 2: step 1 (close): close requires customer acceptance")
    assert "(rule ticket.close_requires_acceptance)" in errors[0]
    assert errors[1].startswith("error: line 3: step 5 (review): ") and "second person" in errors[1]
    assert errors[2].startswith("error: line 4: ticket 'T-9' (line 3) was refused")
    assert errors[3].startswith("error: line 5: customer 'C-1' is already on line 1")
    assert errors[4].startswith("error: line 6: kind must be one of customer, interaction, ticket")
    assert len(errors) == 6


def test_only_roles_granted_history_import_may_import(env, token_env, tmp_path):
    assert CliRunner().invoke(main, ["db", "init"], env=env).exit_code == 0
    path = tmp_path / "helpdesk.ndjson"
    path.write_bytes(ndjson(HISTORY))
    refused = run(token_env("agent"), "import-history", str(path))
    assert refused.exit_code == 1 and "may not history.import" in refused.stderr
    assert run(token_env("administrator"), "import-history", str(path), "--dry-run").exit_code == 0


def test_an_imported_review_by_a_second_person_is_accepted_and_names_both(importer, tmp_path):
    """The recorded actor of every imported event is the importer; who did each step in the old
    helpdesk is meta.performed_by, and the second-person rule compares those people."""
    reviewed = dict(TICKET_1, ref="T-9", steps=[
        step("classify", at(2019, 3, 4, 10), "Zhang Min", priority="normal", complexity="complex", high_risk=True),
        step("assign", at(2019, 3, 4, 10, 5), "Zhang Min", handler="Chen Jie", team="billing"),
        step("start_work", at(2019, 3, 4, 11), "Chen Jie"),
        step("resolve", at(2019, 3, 5, 11), "Chen Jie"),
        step("review", at(2019, 3, 5, 12), "Zhang Min", approved=True)])
    path = tmp_path / "reviewed.ndjson"
    path.write_bytes(ndjson([CUSTOMER_1, reviewed]))
    done = run(importer, "import-history", str(path))
    assert done.exit_code == 0, done.stderr
    listed = run(importer, "events", "--json", "--kind", "ticket", "--limit", "500")
    metas = {json.loads(line)["type"]: json.loads(line)["meta"] for line in listed.stdout.splitlines()}
    assert (metas["Resolved"]["performed_by"], metas["Reviewed"]["performed_by"]) == ("Chen Jie", "Zhang Min")
    assert metas["Reviewed"]["actor_id"] == metas["Resolved"]["actor_id"]  # both recorded as the importer's
