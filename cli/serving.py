"""Production serving: the API under gunicorn, and ``make prod`` starting every process of the Procfile.

``caseledger serve --prod`` runs the Flask app in gunicorn: several worker *processes* (each
builds its own ledger and connection pool after the fork — nothing database-related is shared
across a fork) with a few threads each (``gthread``, so HTTP keep-alive works). On SQLite it runs
one worker, because SQLite serialises writers per file and several processes would mostly wait
on its lock; use PostgreSQL for more.

Prometheus counts per process; the workers share ``PROMETHEUS_MULTIPROC_DIR`` (a fresh temporary
folder unless you set one) so ``/metrics`` reports the sum over all workers. It must be set
before ``prometheus_client`` is first imported, which is why :func:`prepare_metrics_dir` runs
before the API is imported.

``python -m cli.prod`` (what ``make prod`` runs) starts the processes of the ``Procfile`` — the
API, ``caseledger projections run``, ``caseledger scheduler``, ``caseledger webhooks deliver`` —
under :mod:`cli.supervisor`, which
restarts any of them that dies (with backoff) and stops them together on Ctrl-C or SIGTERM.
Without ``CASELEDGER_DATABASE_URL`` it starts a throwaway PostgreSQL cluster first and says so:
its data is deleted when you stop.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Collection

from gunicorn.app.base import BaseApplication
from rich.console import Console

from cli.supervisor import Supervisor
from ledger.database import redact
from ledger.settings import Settings
from ledger.structured_logs import gunicorn_logconfig

console = Console(stderr=True)
PROCFILE = Path(__file__).resolve().parents[1] / "Procfile"
#: The metrics folder this process made (and removes when the server exits), if it made one.
_own_metrics_dir: Path | None = None


def default_workers() -> int:
    """gunicorn's rule of thumb: two per core plus one."""
    return 2 * (os.cpu_count() or 1) + 1


def prepare_metrics_dir(settings: Settings) -> Path:
    """Point prometheus_client at a clean multiprocess folder (call before importing the API)."""
    global _own_metrics_dir
    if settings.prometheus_multiproc_dir:
        folder = settings.prometheus_multiproc_dir
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):  # left by an earlier run: would be added to this one's counts
            stale.unlink()
    else:
        folder = Path(tempfile.mkdtemp(prefix="caseledger-metrics-"))
        # Written, not read: prometheus_client reads it when first imported, and the workers inherit it.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
        _own_metrics_dir = folder
    if "prometheus_client" in sys.modules and not _multiprocess_mode():
        raise RuntimeError("prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set")
    return folder


def _multiprocess_mode() -> bool:
    from api.observability import multiprocess_mode  # not at the top: it imports prometheus_client

    return multiprocess_mode()


class ProductionServer(BaseApplication):
    """gunicorn configured in code: no config file to keep in step with the command line."""

    def __init__(self, settings: Settings, bind: str, *, workers: int, threads: int):
        self.settings = settings
        self.options = {
            "bind": bind, "workers": workers, "threads": threads, "worker_class": "gthread",
            "keepalive": 5, "timeout": 30, "graceful_timeout": 10, "errorlog": "-", "loglevel": "info",
            "proc_name": "caseledger-api", "child_exit": _worker_exited, "on_exit": _server_exited,
            "logconfig_dict": gunicorn_logconfig("api"),  # JSON lines like every process (ledger/structured_logs.py)
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        if "control_socket_disable" in self.cfg.settings:
            # gunicorn ≥ 24's admin socket has one default path per user: two servers would clash.
            self.cfg.set("control_socket_disable", True)

    def load(self) -> Any:
        # Runs in each worker after the fork: its own ledger, its own connection pool.
        from api import create_app

        app = create_app(self.settings)
        # What the worker built at start-up (modules, the app, schemas, policies: ~125k objects) lives
        # as long as the worker: out of the collector's reach, a full collection no longer walks it
        # (~85 ms with every thread of the worker stopped, against well under 1 ms after the freeze).
        gc.collect()
        gc.freeze()
        return app


def _worker_exited(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def _server_exited(server: Any) -> None:
    if _own_metrics_dir is not None:
        shutil.rmtree(_own_metrics_dir, ignore_errors=True)


def serve_production(settings: Settings, bind: str, *, workers: int, threads: int) -> None:
    if settings.backend == "sqlite" and workers > 1:
        console.print(f"[yellow]warning[/]: SQLite allows one writer at a time; running 1 worker instead of "
                      f"{workers}. Set CASELEDGER_DATABASE_URL to a PostgreSQL database to scale out.")
        workers = 1
    console.print(f"[bold green]caseledger[/] (gunicorn, {workers} worker(s) × {threads} threads) on "
                  f"[bold]http://{bind}[/]  ({settings.backend}); health: /healthz /readyz, metrics: /metrics")
    ProductionServer(settings, bind, workers=workers, threads=threads).run()


# -- make prod ------------------------------------------------------------------------------------
def procfile_processes(path: Path = PROCFILE) -> dict[str, str]:
    entries = (line.split(":", 1) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))
    return {name.strip(): command.strip() for name, command in entries}


def _available(name: str, command: str, commands: Collection[str]) -> bool:
    """A Procfile entry whose ``caseledger`` sub-command does not exist yet is left out, with a warning."""
    words = command.split()
    if len(words) > 1 and words[0] == "caseledger" and words[1] not in commands:
        console.print(f"[yellow]warning[/]: not starting '{name}': this version has no 'caseledger {words[1]}'")
        return False
    return True


def _prepare(settings: Settings, *, demo_tokens: bool) -> None:
    """Create the ledger (if new) and the log's signing key before any process starts: they start at
    once, the API and the projection runner need the tables, and the scheduler's first checkpoint job
    needs the key. A throwaway database has no tokens yet: then the demo callers' are issued (printed once)."""
    from cli.access import issue_demo_tokens
    from ledger.bootstrap import create_ledger
    from ledger.keys import LogKeys

    ledger, _ = create_ledger(settings)
    try:
        LogKeys.from_settings(settings).ensure()
        if demo_tokens:
            issue_demo_tokens(ledger)
    finally:
        ledger.close()


def run_procfile(settings: Settings, commands: Collection[str]) -> int:
    """Run every process of the Procfile, each restarted when it dies; Ctrl-C or SIGTERM stops them
    all. ``commands``: the ``caseledger`` sub-commands this version has (``cli.prod`` passes them in)."""
    from cli.throwaway_pg import ThrowawayPostgres

    env = settings.child_environ(PATH=f"{Path(sys.executable).parent}{os.pathsep}{settings.environ.get('PATH', '')}")
    database = None
    if "CASELEDGER_DATABASE_URL" not in env:
        database = ThrowawayPostgres(settings.pg_bindir).start()
        env["CASELEDGER_DATABASE_URL"] = database.dsn
        settings = dataclasses.replace(settings, database_url=database.dsn)
        console.print(f"[yellow]No CASELEDGER_DATABASE_URL: started a throwaway PostgreSQL at {redact(database.dsn)}; "
                      "everything in it is deleted when you stop.[/] Set CASELEDGER_DATABASE_URL to keep data.")
    processes = {name: command for name, command in procfile_processes().items() if _available(name, command, commands)}
    try:
        _prepare(settings, demo_tokens=database is not None)
    except BaseException:
        if database is not None:
            database.stop()
        raise
    if database is None:
        console.print("API tokens: caseledger tokens create --actor ID --role ROLE (same CASELEDGER_DATABASE_URL)")
    try:
        return Supervisor(processes, env, cwd=PROCFILE.parent).run()
    finally:
        if database is not None:
            database.stop()

