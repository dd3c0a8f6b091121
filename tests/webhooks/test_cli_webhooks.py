"""``caseledger webhooks``: the worker's one pass, the dead-letter list and replay, as an administrator."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import main

pytestmark = pytest.mark.integration


def test_deliver_dead_letters_and_replay_on_the_command_line(ledger, token_env, admin, subscriptions, receiver,
                                                            monkeypatch):
    monkeypatch.setattr("cli.webhooks.configure", lambda process: None)  # keep the test run's logging as it is
    admin_env = token_env("administrator", "ops-zhang")
    subscriptions.create(admin(), url=receiver.url, event_types=["Customer.*"], role="team_lead")
    ledger.register_customer(admin("agent-li", "agent"), kind="individual", tier="vip", contact={"name": "赵六"})
    receiver.script = [500]

    once = CliRunner().invoke(main, ["webhooks", "deliver", "--once", "--max-attempts", "1"], env=admin_env)
    assert once.exit_code == 0, once.output
    assert json.loads(once.stdout.strip().splitlines()[-1])["dead"] == 1

    refused = CliRunner().invoke(main, ["webhooks", "dead-letters"], env=token_env("agent"))
    assert refused.exit_code == 1 and "may not webhooks.manage" in refused.stderr
    listed = CliRunner().invoke(main, ["webhooks", "dead-letters"], env=admin_env)
    [dead] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert dead["status"] == "dead" and dead["last_status"] == 500

    replayed = CliRunner().invoke(main, ["webhooks", "replay", dead["delivery_id"]], env=admin_env)
    assert replayed.exit_code == 0 and json.loads(replayed.stdout)["status"] == "pending"
    again = CliRunner().invoke(main, ["webhooks", "deliver", "--once"], env=admin_env)
    assert json.loads(again.stdout.strip().splitlines()[-1])["delivered"] == 1
    assert len(receiver.requests) == 2
    twice = CliRunner().invoke(main, ["webhooks", "replay", dead["delivery_id"]], env=admin_env)
    assert twice.exit_code == 1 and "is delivered" in twice.stderr


def test_version_comes_from_the_package_metadata():
    from importlib.metadata import version

    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"caseledger, version {version('caseledger')}"
