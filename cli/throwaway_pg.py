"""A throwaway PostgreSQL cluster for tests and benchmarks: initdb in a temp dir, own port, removed after.

``initdb`` refuses to run as root, so when we are root the cluster is created and run as the
``postgres`` system user (through ``runuser``). Nothing here is used in production.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ledger.settings import Settings


@contextmanager
def postgres_dsn(settings: Settings) -> Iterator[str]:
    """``CASELEDGER_TEST_PG_DSN`` when set, else a throwaway cluster that lives as long as the block."""
    if settings.test_pg_dsn:
        yield settings.test_pg_dsn
        return
    with ThrowawayPostgres(settings.pg_bindir) as pg:
        yield pg.dsn


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries could be found or started."""


def find_bindir(explicit: Path | None = None) -> Path:
    """``explicit`` (``CASELEDGER_PG_BINDIR``), else pg_config's, else the newest Debian cluster version's."""
    candidates: list[str | Path] = [explicit] if explicit else []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        candidates.append(out)
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    raise PostgresUnavailable("PostgreSQL server binaries (initdb, pg_ctl) not found; install postgresql "
                              "or set CASELEDGER_TEST_PG_DSN to an existing server")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: Server settings of a throwaway cluster: fast, not durable (tests and benchmarks only).
FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "max_connections": "200"}


class ThrowawayPostgres:
    def __init__(self, bindir: Path | None = None, *, user: str = "postgres",
                 settings: dict[str, str] | None = None):
        """``settings``: server settings (``-c name=value``) over :data:`FAST_SETTINGS`."""
        self.bindir = find_bindir(bindir)
        self.settings = {**FAST_SETTINGS, **(settings or {})}
        self.as_root = os.geteuid() == 0
        self.run_as = user if self.as_root else None
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="caseledger-pg-"))
        self.data = self.dir / "data"
        self.started = False

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _cmd(self, *args: str) -> list[str]:
        if self.run_as:
            return ["runuser", "-u", self.run_as, "--", *args]
        return list(args)

    def start(self) -> ThrowawayPostgres:
        if self.run_as:
            shutil.chown(self.dir, user=self.run_as)
            self.dir.chmod(0o700)
        subprocess.run(self._cmd(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                                 "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C"),
                       check=True, capture_output=True)
        try:
            self.pg_ctl_start(self.data, self.port, self.settings, self.dir / "server.log")
        except PostgresUnavailable:
            self.stop()
            raise
        self.started = True
        self._wait_ready()
        return self

    def pg_ctl_start(self, data: Path, port: int, settings: dict[str, str], log: Path) -> None:
        """Start the cluster in ``data`` on loopback port ``port`` (its socket in our folder)."""
        options = f"-p {port} -k {self.dir} -c listen_addresses=127.0.0.1 " + " ".join(
            f"-c {name}={value}" for name, value in settings.items())
        result = subprocess.run(self._cmd(str(self.bindir / "pg_ctl"), "-D", str(data), "-o", options,
                                          "-l", str(log), "-w", "-t", "60", "start"), capture_output=True, text=True)
        if result.returncode != 0:
            text = log.read_text(errors="replace") if log.exists() else ""
            raise PostgresUnavailable(f"pg_ctl start failed: {result.stderr}\n{text}")

    def halt(self, mode: str = "fast") -> None:
        """Stop the server, keeping its data (an outage drill): ``fast`` ends every session at once."""
        subprocess.run(self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"),
                       check=True, capture_output=True)

    def resume(self) -> None:
        """Start the server :meth:`halt` stopped, on the same port."""
        self.pg_ctl_start(self.data, self.port, self.settings, self.dir / "server.log")
        self._wait_ready()

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.dsn, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self.started:
            subprocess.run(self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                                     "stop"), capture_output=True)
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> ThrowawayPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
