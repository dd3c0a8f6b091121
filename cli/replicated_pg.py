"""A throwaway primary with a synchronous streaming standby, on loopback: for the failover test.

The setup is the one README.md ("Replicated PostgreSQL") describes, scaled down to two clusters on
one machine: the standby is a ``pg_basebackup -R`` copy of the primary (``-R`` writes its
``primary_conninfo`` and ``standby.signal``), it names itself with ``cluster_name``, and the
primary lists that name in ``synchronous_standby_names`` — so with ``synchronous_commit=on`` the
primary acknowledges a commit only once the standby has flushed it. Unlike the single throwaway
cluster, both keep ``fsync`` on: the test claims durability across a crash.

Only the primary is started with ``synchronous_standby_names``; the standby, once promoted, has no
standby of its own and would otherwise wait for one at every commit.

Both clusters live in one temporary folder, removed by :meth:`stop`. Nothing here is used in
production.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from cli.throwaway_pg import PostgresUnavailable, ThrowawayPostgres, free_port

STANDBY_NAME = "standby1"
#: Durable settings for both clusters (the fast defaults of throwaway clusters turn durability off).
DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on", "max_connections": "100",
           "wal_level": "replica", "max_wal_senders": "4", "hot_standby": "on", "wal_keep_size": "64MB"}
#: The standby's name on the primary is its cluster_name. A promotion that arrives while the standby
#: waits for WAL from a primary that just died waits out wal_retrieve_retry_interval first
#: (PostgreSQL 15: its default 5 s, measured in 2 of 5 failovers under load); 200 ms keeps it short.
STANDBY_SETTINGS = {**DURABLE, "cluster_name": STANDBY_NAME, "wal_retrieve_retry_interval": "200ms"}


class ReplicatedPostgres:
    def __init__(self, bindir: Path | None = None):
        self.primary = ThrowawayPostgres(bindir, settings={**DURABLE, "synchronous_standby_names": STANDBY_NAME})
        self.standby_port = free_port()
        self.standby_data = self.primary.dir / "standby"
        self.standby_started = False
        self.primary_pids: list[int] = []  # the primary's postmaster and its children, for kill_primary

    @property
    def ports(self) -> tuple[int, int]:
        return self.primary.port, self.standby_port

    def url(self, **query: str) -> str:
        """libpq's multi-host URL: the primary first, then the standby; ``query`` appended."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.ports)
        tail = "&".join(f"{name}={value}" for name, value in query.items())
        return f"postgresql://postgres@{hosts}/postgres" + (f"?{tail}" if tail else "")

    def dsn(self, port: int) -> str:
        """One server's URL (for looking at it directly)."""
        return f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def start(self) -> ReplicatedPostgres:
        self.primary.start()
        try:
            backup = subprocess.run(self.primary._cmd(  # noqa: SLF001 - the same user as the primary's
                str(self.primary.bindir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.primary.port),
                "-U", "postgres", "-D", str(self.standby_data), "-R", "-X", "stream", "-c", "fast"),
                capture_output=True, text=True)
            if backup.returncode != 0:
                raise PostgresUnavailable(f"pg_basebackup failed: {backup.stderr}")
            self.primary.pg_ctl_start(self.standby_data, self.standby_port, STANDBY_SETTINGS,
                                      self.primary.dir / "standby.log")
            self.standby_started = True
            self._wait_synchronous()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_synchronous(self, timeout: float = 30) -> None:
        """Until the primary counts the standby as its synchronous standby."""
        import psycopg

        deadline = time.monotonic() + timeout
        with psycopg.connect(self.dsn(self.primary.port), autocommit=True) as conn:
            while True:
                row = conn.execute("SELECT sync_state FROM pg_stat_replication WHERE application_name = %s",
                                   (STANDBY_NAME,)).fetchone()
                if row and row[0] == "sync":
                    return
                if time.monotonic() > deadline:
                    raise PostgresUnavailable(f"the standby did not become synchronous within {timeout} s")
                time.sleep(0.05)

    def postmaster_pid(self, data: Path) -> int:
        return int((data / "postmaster.pid").read_text().split("\n", 1)[0])

    def kill_primary(self) -> None:
        """``kill -9`` the primary's postmaster, as a crash would (its children exit by themselves
        when they notice; :meth:`stop` makes sure they did)."""
        pid = self.postmaster_pid(self.primary.data)
        self.primary_pids = [pid, *_children(pid)]
        os.kill(pid, signal.SIGKILL)
        self.primary.started = False  # nothing left for pg_ctl to stop

    def promote(self) -> None:
        """``pg_ctl promote``: the standby ends recovery and accepts writes (waits until it does)."""
        result = subprocess.run(self.primary._cmd(  # noqa: SLF001
            str(self.primary.bindir / "pg_ctl"), "-D", str(self.standby_data), "-w", "-t", "60", "promote"),
            capture_output=True, text=True)
        if result.returncode != 0:
            raise PostgresUnavailable(f"pg_ctl promote failed: {result.stderr}")

    def stop(self) -> None:
        if self.standby_started:
            subprocess.run(self.primary._cmd(str(self.primary.bindir / "pg_ctl"), "-D",  # noqa: SLF001
                                             str(self.standby_data), "-m", "immediate", "-w", "stop"),
                           capture_output=True)
            self.standby_started = False
        self.primary.stop()  # also removes the folder, the standby's included
        for pid in self.primary_pids:  # a killed primary's backends, should one not have exited yet
            if _is_postgres(pid):
                os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> ReplicatedPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _is_postgres(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"postgres")
    except OSError:
        return False
