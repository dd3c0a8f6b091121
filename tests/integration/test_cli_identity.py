"""The command line acts as an authenticated person, exactly as the API does (both backends):
tokens, not claimed names; the permission matrix; masking by role; disclosures recorded."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cli.main import main
from ledger.bootstrap import build


def run(env, *args):
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_bootstrap_makes_the_first_administrator_once_and_records_it(env):
    assert run(env, "db", "init")[0] == 0
    code, secret, _ = run(env, "tokens", "bootstrap", "--actor", "ops-zhang")
    assert code == 0 and secret.strip().startswith("cl_")
    admin = {**env, "CASELEDGER_TOKEN": secret.strip()}
    code, _, err = run(env, "tokens", "bootstrap", "--actor", "someone-else")
    assert code == 1 and "has tokens already" in err
    code, made, _ = run(admin, "tokens", "create", "--actor", "rm-chen", "--role", "records_manager")
    assert code == 0 and made.strip().startswith("cl_")
    code, listed, _ = run(admin, "tokens", "list", "--json")
    rows = [json.loads(line) for line in listed.splitlines()]
    assert [(r["actor"], r["role"]) for r in rows] == [("ops-zhang", "administrator"), ("rm-chen", "records_manager")]
    # a records manager may not manage tokens; the bootstrap and the creation are events by real people
    code, _, err = run({**env, "CASELEDGER_TOKEN": made.strip()}, "tokens", "list")
    assert code == 1 and "may not tokens.manage" in err
    ledger = build(env, create=False)
    try:
        issued = [e for _, e in ledger.log(after=0, limit=10) if type(e).__name__ == "Issued"]
    finally:
        ledger.close()
    assert [(e.meta["actor_id"], e.meta["actor_role"], e.meta["via"]) for e in issued] == [
        ("ops-zhang", "administrator", "cli"), ("ops-zhang", "administrator", "cli")]
    assert all(e.meta["os_user"] and e.meta["host"] for e in issued)


def test_a_command_line_read_is_masked_by_role_and_disclosures_are_recorded(env, token_env, ctx):
    ledger = build(env)
    try:
        customer = ledger.register_customer(ctx(), kind="individual", tier="vip",
                                            contact={"name": "张三丰", "phone": "13812345678"})
    finally:
        ledger.close()
    auditor, officer = token_env("auditor", "aud-he"), token_env("compliance_officer", "co-xu")

    code, out, _ = run(auditor, "events", "--json", "--kind", "customer")
    (record,) = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and record["personal"]["fields"] == {"name": "张**", "phone": "138****5678"}
    code, _, err = run(auditor, "events", "--json", "--kind", "customer", "--reason", "audit 2026-14")
    assert code == 1 and "may not see personal data unmasked" in err  # auditors see no personal data

    code, out, _ = run(officer, "events", "--json", "--kind", "customer", "--reason", "DSAR 2026-031")
    (record,) = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and record["personal"]["fields"] == {"name": "张三丰", "phone": "13812345678"}
    code, out, _ = run(officer, "access-events", "--subject", str(customer.id))
    (entry,) = [json.loads(line) for line in out.splitlines()]
    assert (entry["actor_id"], entry["actor_role"], entry["reason"]) == ("co-xu", "compliance_officer",
                                                                          "DSAR 2026-031")
    assert sorted(entry["fields"]) == ["name", "phone"] and entry["resource"].startswith("cli events")


def test_replay_is_an_auditors_read(env, token_env, ctx):
    ledger = build(env)
    try:
        customer = ledger.register_customer(ctx(), kind="individual", tier="vip", contact={"name": "张三丰"})
        ticket = ledger.open_ticket(ctx(), customer_id=str(customer.id), channel="web", summary="slow")
    finally:
        ledger.close()
    code, out, _ = run(token_env("auditor"), "replay", "ticket", str(ticket.id), "--position", "2")
    assert code == 0 and json.loads(out)["status"] == "received"
    code, _, err = run(token_env("agent"), "replay", "ticket", str(ticket.id))
    assert code == 1 and "may not replay.read" in err
