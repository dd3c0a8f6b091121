"""``make prod`` (``cli.serving.run_procfile``): before the Procfile's processes start — all at once —
the ledger exists and so does the log's signing key, so the scheduler's first checkpoint job signs
instead of logging a traceback; then the supervisor runs every process of the Procfile."""

from __future__ import annotations

from pathlib import Path

from cli import serving
from ledger.database import ledger_exists
from ledger.settings import Settings


class StartedProcesses:
    """Stands in for the supervisor: records what there was when the processes would have started."""

    seen: dict[str, object] = {}

    def __init__(self, processes: dict[str, str], env: dict[str, str], **_: object):
        settings = Settings.from_environ({k: v for k, v in env.items() if k.startswith("CASELEDGER_")})
        StartedProcesses.seen = {"ledger": ledger_exists(settings), "signing key": settings.signing_key_file.exists(),
                                 "processes": sorted(processes)}

    def run(self) -> int:
        return 0


def test_make_prod_creates_the_ledger_and_signing_key_before_starting_processes(env, monkeypatch):
    settings = Settings.from_environ(env)
    assert not ledger_exists(settings) and not settings.signing_key_file.exists()
    monkeypatch.setattr(serving, "Supervisor", StartedProcesses)
    assert serving.run_procfile(settings, {"serve", "projections", "scheduler"}) == 0
    assert StartedProcesses.seen == {"ledger": True, "signing key": True,
                                     "processes": ["projections", "scheduler", "web"]}
    assert Path(env["CASELEDGER_HOME"], "data-kek.key").exists()
