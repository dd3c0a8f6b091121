"""The command line as users run it: the installed ``caseledger`` script in a process of its own,
with nothing of this process's environment but what a test gives it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CASELEDGER = str(Path(sys.executable).with_name("caseledger"))
ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str], cwd: Path | str = ROOT,
            timeout: float = 120) -> subprocess.CompletedProcess:
    """``caseledger ARGS`` with exactly ``env`` (plus a PATH); stdout and stderr apart."""
    return subprocess.run([CASELEDGER, *args], env={"PATH": "/usr/bin:/bin", **env}, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def cli():
    """``cli("events", env={...})``: see :func:`run_cli`."""
    return run_cli


@pytest.fixture
def pg_env(pg_url: str, tmp_path: Path) -> dict[str, str]:
    return {"CASELEDGER_DATABASE_URL": pg_url, "CASELEDGER_HOME": str(tmp_path / "pg-home")}
