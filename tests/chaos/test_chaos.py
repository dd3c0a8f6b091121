"""Chaos drills (issue 18): the production stack — ``make prod``: gunicorn API, projection runner,
scheduler, under the supervisor — takes real writes while its parts are killed and its database
goes away, and loses nothing.

Each drill: a write load (threads posting commands with Idempotency-Key headers, 127.0.0.1 only),
a fault, and then the checks — every acknowledged (2xx) write is in the log, ``caseledger verify``
passes, the running projection runner catches up with the log and its read models equal a clean
rebuild (digests, on a copy of the database), and every acknowledged request sent again with its
key is replayed. Faults: ``kill -9`` of an API worker, of the API master, of the projection
runner, of the scheduler; a PostgreSQL restart (``pg_ctl stop -m fast``, start on the same port);
as root, a full disk under a SQLite ledger (a small tmpfs, filled, then freed).

``make test`` runs them short (one round each, a 4 s outage: about a minute); ``make chaos`` runs
``--chaos full`` (three rounds, a 20 s outage, the given-up keys settled) and prints the figures
recorded in bench/RESULTS.md.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from chaos_checks import (
    acknowledged_missing,
    keys_replay,
    keys_settle,
    live_read_models_caught_up,
    read_models_equal_a_rebuild,
    verify,
)
from chaos_support import Load, Stack, alive, call, issue_token, until

from ledger.bootstrap import build

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

#: An outage's requests are answered within CASELEDGER_DB_TIMEOUT_SECONDS (2 s); the client's own
#: measure adds the connection and a loaded machine's scheduling.
ANSWER_LIMIT = 2.5
BACK_LIMIT = 60.0  # seconds for a killed process to be replaced and answering


def check_after(fault: str, round_: int, drill: dict[str, Any], started: float, ended: float, back: float,
                figures: Any, **extra: Any) -> None:
    """Every check of the module docstring, after one fault; the figures are recorded first."""
    stack, load, env, token = drill["stack"], drill["load"], drill["env"], drill["token"]
    failed = load.failed_between(started, ended)
    with load.lock:
        acks = list(load.acks)
    ledger = build(env, create=False)
    try:
        missing = acknowledged_missing(ledger, acks)
        catch_up = live_read_models_caught_up(ledger, timeout=60)
    finally:
        ledger.close()
    verified = verify(env)
    digests = read_models_equal_a_rebuild(env, drill["workdir"], drill.get("pg_bindir"))
    around = [a for a in acks if started - 2 <= a.at <= ended + 2] + acks[: -1: max(len(acks) // 20, 1)]
    keys = keys_replay(stack.port, token, around, timeout=15)
    figures.add(backend=drill["backend"], fault=fault, round=round_, back_s=round(back, 2),
                no_ack_s=round(load.longest_gap(started - 0.5, ended), 2), failed=len(failed),
                slowest_503_s=round(max((f[2] for f in failed if f[1] == 503), default=0), 2),
                held_key_409=sum(1 for f in failed if f[1] == 409), requests=load.requests, acked=len(acks),
                lost=len(missing),
                verify="ok" if verified.returncode == 0 else "FAILED",
                digests="equal" if digests["incremental"] == digests["rebuilt"] else "DIFFER",
                keys=keys, catch_up_s=round(catch_up, 2), **extra)
    assert not missing, f"acknowledged writes not in the log: {missing[:5]}"
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert digests["incremental"] == digests["rebuilt"], digests
    assert keys.get("stuck", 0) == 0, keys


def drill(pg_stack: dict[str, Any], size: Any, figures: Any, fault: str,
          inject: Callable[[dict[str, Any]], float], **extra_of: Callable[[float, float], Any]) -> None:
    """``size.rounds`` times: load, ``inject`` (returns when the stack is whole again), load, checks."""
    pg_stack = {**pg_stack, "backend": "postgres"}
    load: Load = pg_stack["load"]
    for round_ in range(1, size.rounds + 1):
        load.resume()
        time.sleep(size.settle)
        started = time.monotonic()
        back = inject(pg_stack) - started
        time.sleep(size.after)
        ended = time.monotonic()
        load.pause()
        extra = {name: compute(started, ended) for name, compute in extra_of.items()}
        check_after(fault, round_, pg_stack, started, ended, back, figures, **extra)


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def test_kill_an_api_worker(pg_stack, size, figures):
    stack: Stack = pg_stack["stack"]

    def inject(_: dict) -> float:
        victim = stack.worker_pids()[0]
        _kill(victim)
        until(lambda: victim not in stack.worker_pids() and len(stack.worker_pids()) == stack.workers,
              BACK_LIMIT, "gunicorn to replace its worker")
        return time.monotonic()

    drill(pg_stack, size, figures, "kill -9 API worker", inject)


def test_kill_the_api_master(pg_stack, size, figures):
    stack: Stack = pg_stack["stack"]

    def inject(_: dict) -> float:
        victim = stack.pid("web")
        _kill(victim)
        until(lambda: stack.pid("web") != victim and len(stack.worker_pids()) == stack.workers
              and call(stack.port, "GET", "/healthz")[0] == 200, BACK_LIMIT, "the supervisor to restart the API")
        return time.monotonic()

    drill(pg_stack, size, figures, "kill -9 API master", inject)
    restarts = [e for e in stack.events("restart") if e["process"] == "web"]
    assert restarts and restarts[-1]["signal"] == "SIGKILL" and restarts[-1]["backoff_seconds"] > 0


@pytest.mark.parametrize("process", ["projections", "scheduler"])
def test_kill_a_background_process(pg_stack, size, figures, process):
    stack: Stack = pg_stack["stack"]
    others: dict[str, int] = {}

    def inject(_: dict) -> float:
        victim = stack.pid(process)
        others.update({name: stack.pid(name) for name in ("web", "projections", "scheduler") if name != process})
        _kill(victim)
        until(lambda: stack.pid(process) != victim, BACK_LIMIT, f"the supervisor to restart {process}")
        return time.monotonic()

    drill(pg_stack, size, figures, f"kill -9 {process}", inject)
    # Nothing else was stopped or restarted: the defect of honcho, which stopped everything.
    assert {name: stack.pid(name) for name in others} == others and all(alive(pid) for pid in others.values())


def test_restart_postgresql(pg_stack, size, figures):
    stack: Stack = pg_stack["stack"]
    pg = pg_stack["pg"]
    seen: dict[str, Any] = {}

    def inject(_: dict) -> float:
        before = {name: stack.pid(name) for name in ("web", "scheduler")}
        pg.halt("fast")
        halted = time.monotonic()
        time.sleep(min(1.0, size.pg_outage / 2))
        seen["readyz"], _, seen["readyz_body"] = call(stack.port, "GET", "/readyz")
        time.sleep(max(size.pg_outage - (time.monotonic() - halted), 0))
        pg.resume()
        resumed = time.monotonic()
        seen["first_ack_s"] = round(until(lambda: pg_stack["load"].first_ack_after(resumed), BACK_LIMIT,
                                          "a write after the restart") - resumed, 2)
        seen["same_processes"] = {name: stack.pid(name) for name in before} == before
        return resumed

    drill(pg_stack, size, figures, f"PostgreSQL restart ({size.pg_outage:g} s down)", inject,
          outage_503=lambda s, e: sum(1 for f in pg_stack["load"].failed_between(s, e) if f[1] == 503),
          first_ack_after_restart_s=lambda s, e: seen["first_ack_s"])
    failed = pg_stack["load"].failures
    assert any(status == 503 for _, status, _ in failed), "no request was answered 503 during the outage"
    slowest = max(seconds for _, status, seconds in failed if status == 503)
    assert slowest < ANSWER_LIMIT, f"a request during the outage took {slowest:.2f} s"
    assert seen["readyz"] == 503
    # The API and the scheduler rode it out; the projection runner may be restarted by the supervisor.
    assert seen["same_processes"], stack.events("restart")


def test_a_full_disk_under_sqlite(tmp_path, size, figures):
    """A SQLite ledger on a small tmpfs: filled, writes are 503 disk-full (never a 500, nothing half
    written); freed, they succeed again without a restart."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs to fill needs root; the disk-full path is also covered by "
                    "tests/api/test_storage_unavailable.py with a simulated error")
    mount = tmp_path / "disk"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    stack = None
    try:
        env = {"CASELEDGER_DATABASE_URL": f"sqlite:///{mount / 'caseledger.db'}", "CASELEDGER_HOME": str(mount / "home")}
        token = issue_token(env)
        stack = Stack(env, tmp_path, workers=1)
        stack.start()
        load = Load(stack.port, token, writers=size.writers).start()
        drill_state = {"stack": stack, "load": load, "env": env, "token": token, "workdir": tmp_path,
                       "backend": "sqlite"}
        time.sleep(size.settle)
        started = time.monotonic()
        filler = mount / "filler"
        _fill(filler)
        time.sleep(max(size.after, 2.0))
        status, headers, body = call(stack.port, "POST", "/customers", token, {"kind": "individual", "tier": "vip"})
        filler.unlink()
        freed = time.monotonic()
        first = until(lambda: load.first_ack_after(freed), BACK_LIMIT, "a write after space was freed")
        time.sleep(size.after)
        ended = time.monotonic()
        load.pause()
        full_answers = load.failed_between(started, freed)
        check_after("disk full (tmpfs), then freed", 1, drill_state, started, ended, first - started,
                    figures, disk_full_503=sum(1 for f in full_answers if f[1] == 503),
                    first_ack_after_freeing_s=round(first - freed, 2))
        load.stop()
        assert status == 503 and body["cause"] == "disk-full" and int(headers["retry-after"]) > 0, (status, body)
        # 503 disk-full; 409 for a key whose request failed on the full disk and could not let go
        # of it either (it is free again when its lease ends: ledger.idempotency). Never a 500.
        assert {f[1] for f in full_answers} <= {503, 409}, {f[1] for f in full_answers}
    finally:
        if stack is not None:
            stack.stop()
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_readyz_says_so_when_the_disk_is_full(tmp_path):
    """In-process, on a SQLite ledger on a small full tmpfs: not ready, and why."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs to fill needs root")
    from api import create_app

    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    ledger = None
    try:
        env = {"CASELEDGER_DATABASE_URL": f"sqlite:///{mount / 'caseledger.db'}", "CASELEDGER_HOME": str(mount / "home")}
        ledger = build(env)
        client = create_app(env, ledger).test_client()
        assert client.get("/readyz").status_code == 200
        _fill(mount / "filler")
        response = client.get("/readyz")
        assert response.status_code == 503 and "disk" in response.json["detail"], response.json
    finally:
        if ledger is not None:
            ledger.close()
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(path: Path) -> None:
    """Write ``path`` until the file system has no space left."""
    block = b"\0" * (1 << 20)
    with path.open("wb", buffering=0) as out:
        while True:
            try:
                out.write(block)
            except OSError:
                break
        while True:  # the last few KiB
            try:
                out.write(b"\0" * 4096)
            except OSError:
                return


def test_the_given_up_keys_settle_and_the_stack_stops_cleanly(pg_stack, size, figures):
    stack: Stack = pg_stack["stack"]
    load: Load = pg_stack["load"]
    if size.settle_keys and load.unresolved:
        settled = keys_settle(stack.port, pg_stack["token"], load.unresolved, timeout=90)
        figures.add(backend="postgres", fault="keys given up by the load, sent again", keys=settled)
        assert not [k for k in settled if k.startswith("stuck")], settled
    load.stop()
    pids = [stack.pid(name) for name in ("web", "projections", "scheduler", "webhooks")] + stack.worker_pids()
    assert stack.stop() == 0
    stopped = stack.events("stopped")[-1]["exit_codes"]
    assert set(stopped) == {"web", "projections", "scheduler", "webhooks"} and all(code in (0, -15) for code in stopped.values())
    assert not [pid for pid in pids if alive(pid)]
