"""The composition root: builds the ledger and everything around it from the environment.

Environment (all optional):

- ``CASELEDGER_DATABASE_URL``: ``sqlite:///path/to/file.db`` (default ``sqlite:///<home>/caseledger.db``)
  or ``postgresql://user:password@host:port/dbname[?schema=name]``.
- ``CASELEDGER_HOME``: folder for local state (default ``./var``), created on first use.
- ``CASELEDGER_POLICY``: name of the policy new cases are governed by (default: ``index.toml``'s).
- ``CASELEDGER_POLICY_DIR``: folder of policy files (default: the packaged ``domain/policies``).
- ``CASELEDGER_KEK`` (base64) or ``CASELEDGER_KEK_FILE`` (default ``<home>/data-kek.key``, created on
  first use): the key-encryption key that wraps every data subject's key (``ledger.crypto``).
- ``CASELEDGER_KEY_CACHE_SECONDS``: how long a process caches unwrapped data keys (default 5).
- ``CASELEDGER_AGGREGATE_CACHE``: aggregates cached per process (default 10000; 0: off).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping
from urllib.parse import parse_qs, unquote, urlparse

from domain.policy import POLICY_DIR, PolicyBook
from ledger.application import CaseLedger
from ledger.calendar import ChineseBusinessCalendar
from ledger.crypto import KeyEncryptionKey


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    policy_name: str | None
    policy_dir: Path
    aggregate_cache: int = 10_000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get("CASELEDGER_HOME") or "var")
        return cls(
            home=home,
            database_url=env.get("CASELEDGER_DATABASE_URL") or f"sqlite:///{home / 'caseledger.db'}",
            policy_name=env.get("CASELEDGER_POLICY") or None,
            policy_dir=Path(env.get("CASELEDGER_POLICY_DIR") or POLICY_DIR),
            aggregate_cache=int(env.get("CASELEDGER_AGGREGATE_CACHE") or 10_000),
        )

    @property
    def backend(self) -> str:
        return "postgres" if self.database_url.startswith(("postgres://", "postgresql://")) else "sqlite"

    def persistence_env(self) -> dict[str, str]:
        """The eventsourcing environment variables for the configured database (and the aggregate cache)."""
        env = self._database_env()
        # Aggregates are cached per process and fast-forwarded from the store on every read (so other
        # processes' writes are seen), and handed out as deep copies (so a refused command changes nothing).
        if self.aggregate_cache > 0:  # CASELEDGER_AGGREGATE_CACHE=0 turns it off
            env["AGGREGATE_CACHE_MAXSIZE"] = str(self.aggregate_cache)
        return env

    def _database_env(self) -> dict[str, str]:
        url = urlparse(self.database_url)
        if self.backend == "sqlite":
            if url.scheme != "sqlite":
                raise ValueError(f"unsupported database URL {self.database_url!r}")
            path = Path(unquote(self.database_url[len("sqlite:///"):]))
            path.parent.mkdir(parents=True, exist_ok=True)
            return {"PERSISTENCE_MODULE": "ledger.sqlite_store:LedgerSQLiteFactory", "SQLITE_DBNAME": str(path),
                    "SQLITE_LOCK_TIMEOUT": "10", "APPLICATION_RECORDER_TOPIC": "ledger.recorders:LedgerSQLiteRecorder"}
        query = parse_qs(url.query)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": url.path.lstrip("/") or "caseledger",
            "POSTGRES_HOST": url.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": unquote(url.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(url.password or ""),
            "POSTGRES_POOL_SIZE": query.get("pool_size", ["5"])[0],
            "POSTGRES_CONNECT_TIMEOUT": "10",
            # The Merkle log is appended by our recorder inside the events' transaction; the
            # database-function insert path would bypass it, so it stays off.
            "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
            "APPLICATION_RECORDER_TOPIC": "ledger.recorders:LedgerPostgresRecorder",
        }
        if "schema" in query:
            env["POSTGRES_SCHEMA"] = query["schema"][0]
        return env


def build(environ: Mapping[str, str] | None = None) -> CaseLedger:
    """Build the application from the environment (or the given mapping)."""
    settings = Settings.from_env(environ)
    env = os.environ if environ is None else environ
    return CaseLedger(
        settings.persistence_env(),
        policies=PolicyBook.load(settings.policy_dir),
        calendar=ChineseBusinessCalendar(),
        policy_name=settings.policy_name,
        kek=KeyEncryptionKey.from_env(env, settings.home),
        key_cache_seconds=float(env.get("CASELEDGER_KEY_CACHE_SECONDS") or 5),
    )


def transparency_log(ledger: CaseLedger, environ: Mapping[str, str] | None = None):  # noqa: ANN201
    """The ledger's transparency log with the signing keys configured in the environment."""
    from ledger.keys import LogKeys
    from ledger.transparency import TransparencyLog

    return TransparencyLog(ledger, LogKeys.from_env(environ))


def retention(ledger: CaseLedger, environ: Mapping[str, str] | None = None):  # noqa: ANN201
    """Retention, holds and disposition for the ledger; certificates carry the transparency log's size."""
    from ledger.retention import Retention

    return Retention(ledger, tree_size=transparency_log(ledger, environ).size)
