"""The command line against a real database (both backends): import, list events, sign and verify."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cli.main import main


def test_import_events_checkpoint_verify(env, tmp_path):
    runner = CliRunner()
    data = tmp_path / "contacts.ndjson"
    data.write_text('{"channel": "email", "external_ref": "e-1", "content": "hello"}\n'
                    '{"channel": "sms", "external_ref": "e-2", "occurred_at": "2025-09-01T08:00:00+08:00"}\n')
    result = runner.invoke(main, ["import-interactions", str(data)], env=env)
    assert result.exit_code == 0, result.output
    assert "imported 2" in result.output
    again = runner.invoke(main, ["import-interactions", str(data)], env=env)
    assert "imported 0, skipped 2" in again.output

    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"channel": "email"}\n{"channel": 5}\n')
    rejected = runner.invoke(main, ["import-interactions", str(bad)], env=env)
    assert rejected.exit_code == 1 and "line 2" in rejected.output

    listed = runner.invoke(main, ["events", "--json", "--kind", "interaction"], env=env)
    records = [json.loads(line) for line in listed.output.splitlines()]
    assert [r["type"] for r in records] == ["Received", "Received"]
    assert records[0]["meta"]["actor_id"] == "import" and records[0]["meta"]["actor_role"] == "service"

    assert runner.invoke(main, ["keys", "init"], env=env).exit_code == 0
    assert runner.invoke(main, ["keys", "init"], env=env).exit_code == 1  # never silently replaced
    assert runner.invoke(main, ["checkpoint"], env=env).exit_code == 0
    verified = runner.invoke(main, ["verify"], env=env)
    assert verified.exit_code == 0 and "OK 2 leaves, 1 checkpoints" in verified.output
