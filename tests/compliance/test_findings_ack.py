"""Findings are acknowledged with a reason (an event) and never deleted; each audit run writes its
report (JSON and CSV); the findings command line."""

from __future__ import annotations

import csv
import hashlib
import json

import pytest
from click.testing import CliRunner

from cli.main import main
from domain.errors import TransitionForbidden
from services.compliance import ComplianceAudit


@pytest.fixture
def finding(ledger, jobs, at, customer) -> str:
    """One open finding: a ticket's first response (15 min) missed."""
    ledger.open_ticket(at(0), customer_id=customer, channel="phone")
    jobs.run("sla_clocks", 20)
    jobs.run("compliance_audit", 20)
    (raised,) = jobs.events("Finding.Raised")
    return str(raised.originator_id)


def test_a_finding_is_acknowledged_once_with_a_reason_by_an_allowed_role(ledger, jobs, at, finding):
    audit = ComplianceAudit(ledger)
    officer = ("compliance-xu", "compliance_officer")
    for ctx, rule in ((at(30, *officer), "finding.acknowledge_reason"),
                      (at(30, "agent-li", "agent", reason="fine by me"), "finding.acknowledge_role")):
        with pytest.raises(TransitionForbidden) as refused:
            audit.acknowledge(finding, ctx)
        assert refused.value.rule == rule and refused.value.clause == "003 §6.1"
    done = audit.acknowledge(finding, at(31, *officer, reason="customer was on leave; agreed with the lead"))
    assert (done.status, done.acknowledged_by, done.version) == ("acknowledged", "compliance-xu", 2)
    with pytest.raises(TransitionForbidden) as twice:
        audit.acknowledge(finding, at(32, *officer, reason="again"))
    assert twice.value.rule == "finding.acknowledge_once"
    again = jobs.run("compliance_audit", 40)
    assert again.counts == {"due": 0, "raised": 0, "already_raised": 0, "open": 0}
    (row,) = audit.report(at(40).occurred_at, [finding])["findings"]
    assert (row["status"], row["ack_reason"], row["acknowledged_role"]) == (
        "acknowledged", "customer was on leave; agreed with the lead", "compliance_officer")  # still there
    audit.close()


def test_each_audit_run_writes_its_report_as_json_and_csv(ledger, jobs, at, finding, env):
    outcome = jobs.run("compliance_audit", 25)  # nothing new: the report lists the finding still open
    details = outcome.details
    report = json.loads(open(details["report_json"], encoding="utf-8").read())
    assert [(f["finding_id"], f["rule"], f["clause"], f["status"], f["new_in_run"]) for f in report["findings"]] == [
        (finding, "sla_breach", "003 §2.2.2", "open", False)]
    assert {r["rule"]: r["status"] for r in report["rules"]}["closed_without_acceptance"] == "active"
    assert all(r["clause"] for r in report["rules"])
    with open(details["report_csv"], encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["finding_id"], r["rule"], r["new_in_run"]) for r in rows] == [(finding, "sla_breach", "False")]
    for suffix in ("json", "csv"):
        data = open(details[f"report_{suffix}"], "rb").read()
        assert hashlib.sha256(data).hexdigest() == details[f"report_{suffix}_sha256"]
    assert details["report_json"].startswith(env["CASELEDGER_HOME"])


def test_findings_on_the_command_line(ledger, env, token_env, finding):
    def run(role, *args):
        return CliRunner().invoke(main, list(args), env=token_env(role))

    listed = run("auditor", "findings", "list", "--json")
    (row,) = [json.loads(line) for line in listed.output.splitlines()]
    assert (row["finding_id"], row["rule"], row["status"]) == (finding, "sla_breach", "open")
    refused = run("agent", "findings", "ack", finding, "--reason", "ok")
    assert refused.exit_code == 1 and "may not findings.acknowledge" in refused.output
    done = run("compliance_officer", "findings", "ack", finding, "--reason", "known outage")
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["status"] == "acknowledged"
    listed = run("auditor", "findings", "list", "--status", "acknowledged", "--json")
    assert json.loads(listed.output)["ack_reason"] == "known outage"
    acknowledged = json.loads(listed.output)
    assert (acknowledged["acknowledged_by"], acknowledged["acknowledged_role"]) == ("compliance_officer-1",
                                                                                    "compliance_officer")
