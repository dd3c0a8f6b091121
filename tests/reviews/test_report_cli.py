"""``caseledger report run|list|verify`` and ``caseledger export --from --to``, as token holders. Both backends."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli.main import main
from ledger.integrity.checkpoint import generate_key, public_key_to_text
from ledger.keys import LogKeys
from ledger.settings import Settings


def run(env, *args):
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_report_run_twice_list_and_verify(env, token_env, tmp_path):
    keys = LogKeys.from_settings(Settings.from_environ(env))
    keys.init()
    admin = token_env("administrator")
    code, text = run(admin, "report", "run", "--kind", "monthly", "--period", "2025-09",
                     "--as-of", "2025-10-01T01:00:00+08:00")
    assert code == 0 and "monthly_check 2025-09: issued" in text, text
    details = json.loads(text[text.index("{"):])
    code, text = run(admin, "report", "run", "--kind", "monthly_check", "--period", "2025-09",
                     "--as-of", "2025-10-02T01:00:00+08:00")
    assert code == 0 and "already issued" in text and json.loads(text[text.index("{"):]) == details
    code, text = run(token_env("auditor", base=env), "report", "list")
    assert code == 0 and text.count("monthly_check\t2025-09") == 1 and details["sha256"] in text
    assert run(token_env("agent", base=env), "report", "run", "--kind", "monthly")[0] == 1  # not granted

    pinned = tmp_path / "key.txt"
    pinned.write_text(keys.verifier_text() + "\n")
    code, text = run(env, "report", "verify", details["file"], "--trust", str(pinned))
    assert code == 0 and "OK monthly_check 2025-09" in text
    stranger = tmp_path / "stranger.txt"
    stranger.write_text(public_key_to_text(generate_key().public_key(), keys.origin) + "\n")
    assert run(env, "report", "verify", details["file"], "--trust", str(stranger))[0] == 3
    Path(details["file"]).write_text(Path(details["file"]).read_text().replace("2025-09-30", "2025-09-29"))
    code, text = run(env, "report", "verify", details["file"], "--trust", str(pinned))
    assert code == 1 and "changed after it was signed" in text
    code, text = run(admin, "report", "run", "--kind", "nope", "--period", "2025-09")
    assert code == 2 and "names no review kind" in text


def test_export_by_period_on_the_command_line(env, token_env, tmp_path):
    LogKeys.from_settings(Settings.from_environ(env)).init()
    auditor = token_env("auditor")
    out = tmp_path / "bundle"
    code, text = run(auditor, "export", "--from", "2020-01-01T00:00:00Z", "--to", "2100-01-01T00:00:00Z",
                     "--out", str(out))
    assert code == 0, text
    manifest = json.loads((out / "manifest.note").read_text().split("\n")[1])
    assert manifest["scope"]["kind"] == "period" and manifest["events"] == len(manifest["leaf_list"]) >= 1
    code, text = run(auditor, "export", "--from", "2020-01-01T00:00:00Z", "--out", str(tmp_path / "x"))
    assert code == 2 and "needs --from and --to" in text
