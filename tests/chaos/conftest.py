"""Fixtures of the chaos drills: their size (``--chaos short|full``), a PostgreSQL of their own (it is
restarted: the session's is shared), the production stack on it with a write load, and the figures
every drill records (printed at the end; ``--chaos full`` also writes them to var/chaos/)."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
from chaos_support import REPO, Load, Stack, issue_token

from cli.throwaway_pg import ThrowawayPostgres
from ledger.settings import Settings


@dataclass(frozen=True)
class Size:
    rounds: int  # each fault, this many times
    settle: float  # seconds of load before a fault
    after: float  # seconds of load after the fault is over, before the checks
    pg_outage: float  # seconds PostgreSQL stays down
    writers: int
    settle_keys: bool  # wait out the leases of the keys the load gave up on (≈ 60 s)


SIZES = {"short": Size(rounds=1, settle=1.0, after=1.0, pg_outage=4.0, writers=2, settle_keys=False),
         "full": Size(rounds=3, settle=3.0, after=3.0, pg_outage=20.0, writers=3, settle_keys=True)}


@pytest.fixture(scope="session")
def size(request: pytest.FixtureRequest) -> Size:
    return SIZES[request.config.getoption("--chaos")]


class Figures:
    """One row per fault and round: what it cost and what the checks found."""

    def __init__(self, mode: str):
        self.mode, self.rows, self.started = mode, [], time.time()

    def add(self, **row: Any) -> None:
        self.rows.append(row)

    def summary(self) -> str:
        columns = ["backend", "fault", "round", "back_s", "no_ack_s", "failed", "slowest_503_s", "held_key_409",
                   "requests", "acked", "lost", "verify", "digests", "keys"]
        lines = [" | ".join(columns)]
        lines += [" | ".join([*(str(row.get(c, "")) for c in columns),
                              *(f"{k}={v}" for k, v in row.items() if k not in columns)]) for row in self.rows]
        return "\n".join(lines)

    def save(self) -> Path:
        folder = REPO / "var" / "chaos"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / time.strftime("%Y%m%d-%H%M%S.json")
        path.write_text(json.dumps({"mode": self.mode, "machine": platform.platform(), "cpus": os.cpu_count(),
                                    "load_average": os.getloadavg(), "seconds": round(time.time() - self.started, 1),
                                    "rows": self.rows}, indent=2, default=str))
        return path


@pytest.fixture(scope="session")
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    found = Figures(request.config.getoption("--chaos"))
    yield found
    if found.rows:
        print(f"\nchaos figures ({found.mode}), load average {os.getloadavg()}:\n{found.summary()}")
        if found.mode == "full":
            print(f"written to {found.save()}")


@pytest.fixture(scope="module")
def postgres() -> Iterator[ThrowawayPostgres]:
    with ThrowawayPostgres(Settings.from_environ().pg_bindir) as pg:
        yield pg


@pytest.fixture(scope="module")
def pg_stack(postgres: ThrowawayPostgres, tmp_path_factory: pytest.TempPathFactory,
             size: Size) -> Iterator[dict[str, Any]]:
    """``make prod`` on the drills' PostgreSQL, with a write load running (paused between drills)."""
    workdir = tmp_path_factory.mktemp("chaos-pg")
    env = {"CASELEDGER_DATABASE_URL": postgres.dsn, "CASELEDGER_HOME": str(workdir / "home")}
    token = issue_token(env)
    stack = Stack(env, workdir)
    started = stack.start()
    load = Load(stack.port, token, writers=size.writers).start()
    load.pause()
    try:
        yield {"stack": stack, "load": load, "env": env, "token": token, "pg": postgres, "workdir": workdir,
               "start_seconds": started}
    finally:
        load.stop()
        stack.stop()
