"""Need-to-know on the command line (003 §6.3 least privilege, issue 19), both backends: an agent's
``personal.unmask`` has scope ``own``, so with ``--reason`` they see unmasked only the customers of
cases they own or are assigned — the API's decision — and only that read is in the access log."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cli.main import main
from ledger.bootstrap import build


def run(env, *args):
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_an_agent_sees_unmasked_only_the_customers_of_their_own_cases(env, token_env, ctx):
    ledger = build(env)
    try:
        # Both customers are registered by a third agent: neither record is agent-li's by registration.
        own = ledger.register_customer(ctx("intake-zhao"), kind="individual", tier="vip",
                                       contact={"name": "张三丰", "phone": "13812345678"})
        other = ledger.register_customer(ctx("intake-zhao"), kind="individual", tier="general",
                                         contact={"name": "李四光", "phone": "13987654321"})
        ledger.open_ticket(ctx("agent-li"), customer_id=str(own.id), channel="web", summary="slow")
        ledger.open_ticket(ctx("agent-wu"), customer_id=str(other.id), channel="web", summary="broken")
    finally:
        ledger.close()
    agent = token_env("agent", "agent-li")

    # Someone else's case: masked although a reason is given, and nothing is recorded as disclosed.
    code, out, err = run(agent, "customer", "show", str(other.id), "--reason", "callback 2026-07")
    assert code == 0, err
    assert json.loads(out)["contact"] == {"name": "李**", "phone": "139****4321"}

    # Their own case's customer: unmasked with a reason, masked without one.
    code, out, err = run(agent, "customer", "show", str(own.id), "--reason", "callback 2026-08")
    assert code == 0, err
    assert json.loads(out)["contact"] == {"name": "张三丰", "phone": "13812345678"}
    code, out, _ = run(agent, "customer", "show", str(own.id))
    assert code == 0 and json.loads(out)["contact"] == {"name": "张**", "phone": "138****5678"}

    officer = token_env("compliance_officer", "co-xu")
    code, out, _ = run(officer, "access-events", "--actor", "agent-li")
    entries = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [(e["subject"], e["reason"]) for e in entries] == [(str(own.id), "callback 2026-08")]
    assert sorted(entries[0]["fields"]) == ["name", "phone"] and entries[0]["resource"].startswith("cli customer show")


def test_a_role_with_unmask_everywhere_is_not_limited_to_its_cases(env, token_env, ctx):
    ledger = build(env)
    try:
        customer = ledger.register_customer(ctx("intake-zhao"), kind="individual", tier="vip",
                                            contact={"name": "王五", "phone": "13700001111"})
    finally:
        ledger.close()
    code, out, err = run(token_env("team_lead", "lead-wang", team="hotline"), "customer", "show", str(customer.id),
                         "--reason", "escalation 2026-09")
    assert code == 0, err
    assert json.loads(out)["contact"] == {"name": "王五", "phone": "13700001111"}
    code, _, err = run(token_env("auditor", "aud-he"), "customer", "show", str(customer.id), "--reason", "audit")
    assert code == 1 and "may not" in err  # auditors hold no customer.read (or no unmask): refused, never shown
