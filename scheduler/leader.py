"""Leader election: of several scheduler processes on one database, only the holder of a lock runs jobs.

- PostgreSQL: a session advisory lock (``pg_try_advisory_lock``) held on a dedicated connection,
  keyed by database and schema (several ledgers can share a server). The server releases it the
  moment that session ends — the process died, was killed, or lost its connection — and the
  holder notices a lost connection on its next :meth:`still_held` check, so two leaders never run
  jobs for longer than one check interval.
- SQLite: an exclusive ``flock`` on ``<database file>.scheduler.lock``; the kernel releases it
  when the process dies, however it dies.

Followers call :meth:`try_acquire` every few seconds (``CASELEDGER_SCHEDULER_RETRY_SECONDS``), so
a dead leader is replaced within one retry interval.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from typing import Any, Protocol

from ledger.pgurl import is_postgres


class LeaderLock(Protocol):
    description: str

    def try_acquire(self) -> bool: ...

    def still_held(self) -> bool: ...

    def release(self) -> None: ...


class PostgresLeaderLock:
    def __init__(self, env: dict[str, str]):
        from projections.store import ViewDatabase

        self.db = ViewDatabase(env)
        scope = f"caseledger.scheduler|{env.get('POSTGRES_DBNAME')}|{self.db.schema}"
        self.key = int.from_bytes(hashlib.sha256(scope.encode()).digest()[:8], "big", signed=True)
        self.description = f"PostgreSQL advisory lock {self.key} ({scope})"
        self.held = False

    def try_acquire(self) -> bool:
        try:
            row = self.db.connection.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        except Exception:  # noqa: BLE001 - no database: not the leader; try again later
            self.db.close()
            return False
        self.held = bool(row and row[0])
        return self.held

    def still_held(self) -> bool:
        """The lock lives as long as its session: check the session is still there."""
        try:
            self.db.connection.execute("SELECT 1").fetchone()
        except Exception:  # noqa: BLE001 - connection gone: the server has released the lock
            self.held = False
            self.db.close()
        return self.held

    def release(self) -> None:
        if self.held:
            try:
                self.db.connection.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
            except Exception:  # noqa: BLE001 - closing the session releases it anyway
                pass
        self.held = False
        self.db.close()


class FileLeaderLock:
    def __init__(self, path: Path):
        self.path = path
        self.description = f"file lock {path}"
        self.fd: int | None = None

    def try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # for people looking: who leads
        self.fd = fd
        return True

    def still_held(self) -> bool:
        return self.fd is not None

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def leader_lock(ledger: Any) -> LeaderLock:
    """The lock that fits the ledger's database."""
    env = {key: str(value) for key, value in ledger.env.items()}
    if is_postgres(env):
        return PostgresLeaderLock(env)
    return FileLeaderLock(Path(env["SQLITE_DBNAME"] + ".scheduler.lock"))
