"""``caseledger serve --prod``: a real gunicorn in a subprocess, on both backends."""

from __future__ import annotations

import gc
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from cli.serving import ProductionServer
from cli.throwaway_pg import free_port
from ledger.settings import Settings

CASELEDGER = str(Path(sys.executable).parent / "caseledger")


def _get(port: int, path: str) -> tuple[int, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return response.status, response.read().decode()


def _wait_healthy(port: int, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited during start-up"
        try:
            if _get(port, "/healthz")[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("no answer on /healthz")


def test_serve_prod_runs_gunicorn_workers_and_sums_their_metrics(env, tmp_path, parse_metrics):
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen([CASELEDGER, "serve", "--prod", "--workers", "2", "--threads", "2", "--bind",
                                   f"127.0.0.1:{port}"], env={"PATH": "/usr/bin:/bin", **env}, stdout=out,
                                  stderr=subprocess.STDOUT)
        try:
            _wait_healthy(port, server)
            assert _get(port, "/readyz")[0] == 200
            for _ in range(20):  # spread over the workers by the kernel; the metrics must add them up
                _get(port, "/healthz")
            found = parse_metrics(_get(port, "/metrics")[1])
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    output = log.read_text()
    assert "Using worker: gthread" in output
    workers = 1 if env["CASELEDGER_DATABASE_URL"].startswith("sqlite") else 2
    assert output.count("Booting worker") == workers
    if workers == 1:
        assert "SQLite allows one writer at a time" in output
    healthz = frozenset({"method": "GET", "endpoint": "/healthz", "status": "200"}.items())
    assert found[("caseledger_http_request_duration_seconds_count", healthz)] >= 21
    assert found[("caseledger_database_up", frozenset())] == 1
    assert server.returncode == 0


def test_a_worker_puts_what_it_built_at_start_up_out_of_the_collectors_reach(env):
    # What gunicorn calls in each worker after the fork (here, in this process: unfrozen after).
    server = ProductionServer(Settings.from_environ(env), "127.0.0.1:0", workers=1, threads=1)
    before = gc.get_freeze_count()
    try:
        app = server.load()
        frozen = gc.get_freeze_count()
    finally:
        gc.unfreeze()
    try:
        assert frozen - before > 10_000  # the app, its schemas and policies (≈125k objects)
        assert app.test_client().get("/healthz").status_code == 200
    finally:
        app.extensions["caseledger"].close()
