"""The chaos drills' checks after a fault: nothing acknowledged is lost, the log verifies, the read
models equal a rebuild, and no Idempotency-Key is held for good."""

from __future__ import annotations

import sqlite3
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from chaos_support import CASELEDGER, Ack, call, until

def acknowledged_missing(ledger: Any, acks: list[Ack]) -> list[Ack]:
    """The acknowledged writes not in the log at (at least) the version the API answered."""
    missing = []
    for ack in acks:
        events = ledger.recorder.select_events(uuid.UUID(ack.id), desc=True, limit=1)
        if not events or events[0].originator_version < ack.version:
            missing.append(ack)
    return missing


def verify(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([CASELEDGER, "verify"], env={"PATH": "/usr/bin:/bin", **env}, capture_output=True,
                          text=True, timeout=120)


def live_read_models_caught_up(ledger: Any, timeout: float) -> float:
    """Seconds until the running projection runner has applied the whole log (no read model stalled)."""
    from projections.catalog import runner_for

    started = time.monotonic()
    runner = runner_for(ledger)
    try:
        def caught_up() -> bool:
            statuses = runner.status()
            assert not [s.name for s in statuses if s.stall is not None], "a read model stalled"
            return all(s.lag == 0 for s in statuses)

        until(caught_up, timeout, "the projection runner to catch up", pause=0.2)
    finally:
        runner.close()
    return time.monotonic() - started


def copy_database(env: dict[str, str], workdir: Path, pg_bindir: Path | None) -> dict[str, str]:
    """A consistent copy of the ledger's database (SQLite backup API / pg_dump into a new database):
    the environment of a ledger on it, with the same keys."""
    url = env["CASELEDGER_DATABASE_URL"]
    if url.startswith("sqlite:///"):
        target = workdir / f"copy-{uuid.uuid4().hex[:8]}.db"
        with sqlite3.connect(url[len("sqlite:///"):]) as source, sqlite3.connect(target) as copy:
            source.backup(copy)
        return {**env, "CASELEDGER_DATABASE_URL": f"sqlite:///{target}"}
    import psycopg

    name = f"copy_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    copy_url = url.rsplit("/", 1)[0] + f"/{name}"
    bindir = Path(pg_bindir) if pg_bindir else _pg_bindir()
    dump = subprocess.run([str(bindir / "pg_dump"), "--no-owner", "-d", url], capture_output=True, check=True)
    subprocess.run([str(bindir / "psql"), "-q", "-v", "ON_ERROR_STOP=1", "-d", copy_url], input=dump.stdout,
                   capture_output=True, check=True)
    return {**env, "CASELEDGER_DATABASE_URL": copy_url}


def _pg_bindir() -> Path:
    from cli.throwaway_pg import find_bindir

    return find_bindir()


def read_models_equal_a_rebuild(env: dict[str, str], workdir: Path, pg_bindir: Path | None) -> dict[str, Any]:
    """On a copy of the database: the read models as the runner left them (caught up to the copy's
    end of the log) against the same read models rebuilt from nothing. Returns both digests."""
    from ledger.bootstrap import build
    from projections.catalog import runner_for

    copy = build(copy_database(env, workdir, pg_bindir), create=False)
    runner = runner_for(copy)
    try:
        runner.catch_up(strict=False)
        incremental, positions = runner.digests(), runner.positions()
        runner.rebuild(workers=1)
        rebuilt, rebuilt_positions = runner.digests(), runner.positions()
    finally:
        runner.close()
        copy.close()
    assert positions == rebuilt_positions
    return {"incremental": incremental, "rebuilt": rebuilt, "positions": positions}


def keys_settle(port: int, token: str, unresolved: list[tuple[str, dict[str, Any], str]], timeout: float) -> dict[str, int]:
    """Requests the load gave up on, sent again with their keys: each must end in 2xx (run now, or
    its first attempt's answer replayed or rebuilt) within ``timeout`` — a key held by a request
    that died is free when its lease ends (ledger.idempotency.LEASE), never blocked for good."""
    outcome: Counter = Counter()
    deadline = time.monotonic() + timeout
    for path, body, key in unresolved:
        while True:
            status, headers, _ = call(port, "POST", path, token, body, {"Idempotency-Key": key})
            if 200 <= status < 300:
                outcome["replayed" if headers.get("idempotent-replayed") == "true" else "ran"] += 1
                break
            if status in (0, 409, 503) and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            outcome[f"stuck ({status})"] += 1
            break
    return dict(outcome)


def keys_replay(port: int, token: str, acks: list[Ack], timeout: float) -> dict[str, int]:
    """Each acknowledged request sent again with its key must be replayed (same id), not run again
    and not refused for ever: a key whose holder died before keeping the answer is 409 until its
    lease ends (ledger.idempotency), then rebuilt — ``timeout`` bounds the wait."""
    outcome: Counter = Counter()
    deadline = time.monotonic() + timeout
    for ack in acks:
        while True:
            status, headers, body = call(port, "POST", ack.path, token, ack.body, {"Idempotency-Key": ack.key})
            if 200 <= status < 300:
                assert body["id"] == ack.id and headers.get("idempotent-replayed") == "true", (ack, status, body)
                outcome["replayed"] += 1
                break
            if status in (0, 409, 503) and time.monotonic() < deadline:
                outcome[f"waited on {status}"] += 1
                time.sleep(0.5)
                continue
            outcome["stuck"] += 1
            break
    return dict(outcome)
