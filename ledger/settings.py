"""Settings: every ``CASELEDGER_*`` environment variable, read once, here, and validated.

Entry points (the command line, the API's production server, the scheduler, tests and
benchmarks) call :meth:`Settings.from_environ` once and pass the object down; no other module
reads the process environment. A bad value stops the process with one line naming the variable
(:class:`SettingsError`), and so does an unknown ``CASELEDGER_*`` name (a mistyped variable would
otherwise be ignored in silence).

The table of variables in README.md ("Settings") is checked against :data:`VARIABLES` by a test.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import unquote, urlparse

from domain.policy import POLICY_DIR
from ledger.pgurl import postgres_env

PREFIX = "CASELEDGER_"
#: ``CASELEDGER_SCHEDULE_<JOB>``: a schedule per job (names checked by the scheduler, which knows its jobs).
SCHEDULE_PREFIX = PREFIX + "SCHEDULE_"


class SettingsError(ValueError):
    """A variable has a value that cannot be used; the message names it."""


@dataclass(frozen=True)
class Variable:
    name: str
    default: str  # as the README shows it
    meaning: str


def _setting(name: str, shown_default: str, meaning: str, **kwargs: Any) -> Any:
    return field(metadata={"variable": Variable(PREFIX + name, shown_default, meaning)}, **kwargs)


@dataclass(frozen=True)
class Settings:
    # -- where state lives ---------------------------------------------------------------------------
    home: Path = _setting("HOME", "`./var`", "folder for local state: SQLite file, keys, reports",
                          default=Path("var"))
    database_url: str = _setting("DATABASE_URL", "`sqlite:///<home>/caseledger.db`",
                                 "`sqlite:///path` or `postgresql://user:password@host:port/db[?schema=s&pool_size=n]`; "
                                 "several `host:port` and libpq parameters: see Replicated PostgreSQL",
                                 default="")
    policy_name: str | None = _setting("POLICY", "`index.toml`'s default", "policy that governs new cases",
                                       default=None)
    policy_dir: Path = _setting("POLICY_DIR", "packaged `domain/policies`", "folder of policy files",
                                default=POLICY_DIR)
    aggregate_cache: int = _setting("AGGREGATE_CACHE", "`10000`", "aggregates cached per process (0: off)",
                                    default=10_000)
    # 10: no load ever replays more events than a 10-event case (issue 22: 500 events cost ≤ 1.2× 10).
    snapshot_every: int = _setting("SNAPSHOT_EVERY", "`10`",
                                   "snapshot an aggregate every N of its events, so loading it replays fewer (0: off)",
                                   default=10)
    db_timeout_seconds: float = _setting("DB_TIMEOUT_SECONDS", "`2`",
                                         "PostgreSQL: how long an API request waits for an unreachable database before "
                                         "it is answered 503 with `Retry-After`; also the connect and pool checkout "
                                         "timeout", default=2.0)
    clock_skew_seconds: float = _setting("CLOCK_SKEW_SECONDS", "`120`",
                                         "how far business time may run ahead of the wall clock (a fast client clock)",
                                         default=120.0)
    # -- keys outside the database -------------------------------------------------------------------
    kek: bytes | None = _setting("KEK", "unset", "key-encryption key, base64 of 32 bytes (else the file below)",
                                 default=None, repr=False)
    kek_file: Path | None = _setting("KEK_FILE", "`<home>/data-kek.key`",
                                     "key-encryption key file, created on first use", default=None)
    key_cache_seconds: float = _setting("KEY_CACHE_SECONDS", "`5`", "how long a process caches unwrapped data keys",
                                        default=5.0)
    signing_key_file: Path | None = _setting("SIGNING_KEY_FILE", "`<home>/keys/log-signing.pem`",
                                             "the log's Ed25519 signing key (PKCS#8 PEM)", default=None)
    verifier_key_file: Path | None = _setting("VERIFIER_KEY_FILE", "`<home>/keys/log-verifier.txt`",
                                              "the log's public key, as a signed-note verifier key", default=None)
    log_origin: str | None = _setting("LOG_ORIGIN", "made unique at `keys init`",
                                      "the log's name, also its key's name; fixed by the key once made",
                                      default=None)
    checkpoint_dir: Path | None = _setting("CHECKPOINT_DIR", "`<home>/checkpoints`",
                                           "every published checkpoint is also written here, outside the "
                                           "database (keep a copy elsewhere too)", default=None)
    public_log_rate_limit: str = _setting("PUBLIC_LOG_RATE_LIMIT", "`120/minute`",
                                          "requests per client address to the public `/log` endpoints "
                                          "(no token), e.g. `10/second`", default="120/minute")
    token: str | None = _setting("TOKEN", "unset", "the API token a command-line user acts with (or `--token-file`)",
                                 default=None, repr=False)
    # -- the scheduler process -----------------------------------------------------------------------
    scheduler_jobs: tuple[str, ...] = _setting("SCHEDULER_JOBS", "all jobs", "comma-separated jobs this scheduler runs",
                                               default=())
    schedules: Mapping[str, str] = _setting("SCHEDULE_<JOB>", "the job's own",
                                            "`every 30s` / `every 5m` / `every 1h`, a crontab, or `off`",
                                            default_factory=dict)
    scheduler_retry_seconds: float = _setting("SCHEDULER_RETRY_SECONDS", "`5`",
                                              "how often a follower tries to become the leader", default=5.0)
    scheduler_check_seconds: float = _setting("SCHEDULER_CHECK_SECONDS", "`5`",
                                              "how often the leader checks it still holds its lock", default=5.0)
    scheduler_workers: int = _setting("SCHEDULER_WORKERS", "`2`", "jobs running at once", default=2)
    reports_dir: Path | None = _setting("REPORTS_DIR", "`<home>/reports`", "where scheduled jobs write reports",
                                        default=None)
    # -- developer tools: tests and benchmarks -------------------------------------------------------
    test_pg_dsn: str | None = _setting("TEST_PG_DSN", "unset (a throwaway cluster)",
                                       "PostgreSQL server for tests (and benchmarks)", default=None)
    bench_pg_dsn: str | None = _setting("BENCH_PG_DSN", "unset (`CASELEDGER_TEST_PG_DSN`)",
                                        "PostgreSQL server for benchmarks", default=None)
    pg_bindir: Path | None = _setting("PG_BINDIR", "newest `/usr/lib/postgresql/*/bin`",
                                      "PostgreSQL binaries for throwaway clusters", default=None)
    # -- not ours, read here all the same ------------------------------------------------------------
    #: prometheus_client's multiprocess folder (set by ``caseledger serve --prod`` when unset).
    prometheus_multiproc_dir: Path | None = field(default=None, metadata={"other": "PROMETHEUS_MULTIPROC_DIR"})
    #: The environment these settings were read from, handed on to child processes as it was.
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        home = self.home
        defaults = {"database_url": f"sqlite:///{home / 'caseledger.db'}", "kek_file": home / "data-kek.key",
                    "signing_key_file": home / "keys" / "log-signing.pem",
                    "verifier_key_file": home / "keys" / "log-verifier.txt", "reports_dir": home / "reports",
                    "checkpoint_dir": home / "checkpoints"}
        for name, value in defaults.items():
            if not getattr(self, name):
                object.__setattr__(self, name, value)
        _check_database_url(self.database_url)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the settings from ``environ`` (default: this process's environment)."""
        env = dict(os.environ if environ is None else environ)
        known = {variable.name for variable in VARIABLES}
        unknown = sorted(name for name in env if name.startswith(PREFIX) and name not in known
                         and not name.startswith(SCHEDULE_PREFIX))
        if unknown:
            raise SettingsError(f"{unknown[0]}: no such setting (see README.md, Settings)")
        values: dict[str, Any] = {}
        for item in dataclasses.fields(cls):
            variable = item.metadata.get("variable")
            if variable is None or item.name == "schedules":
                continue
            text = env.get(variable.name, "").strip()
            if text:
                values[item.name] = _parse(variable.name, text, _PARSERS.get(item.name, str))
        values["schedules"] = {name[len(SCHEDULE_PREFIX):].lower(): text.strip() for name, text in env.items()
                               if name.startswith(SCHEDULE_PREFIX) and text.strip()}
        if env.get("PROMETHEUS_MULTIPROC_DIR"):
            values["prometheus_multiproc_dir"] = Path(env["PROMETHEUS_MULTIPROC_DIR"])
        return cls(environ=env, **values)

    def child_environ(self, **overrides: str) -> dict[str, str]:
        """The environment for a child process: this one's, with ``overrides``."""
        return {**self.environ, **overrides}

    @property
    def backend(self) -> str:
        return "postgres" if self.database_url.startswith(("postgres://", "postgresql://")) else "sqlite"

    def persistence_env(self) -> dict[str, str]:
        """The eventsourcing environment for the configured database (and the aggregate cache)."""
        env = _database_env(self.database_url, self.db_timeout_seconds)
        # Aggregates are cached per process and fast-forwarded from the store on every read (so other
        # processes' writes are seen), and handed out as deep copies (so a refused command changes nothing).
        if self.aggregate_cache > 0:
            env["AGGREGATE_CACHE_MAXSIZE"] = str(self.aggregate_cache)
        if self.snapshot_every > 0:  # a cache beside the events, never part of the log (ledger.snapshots)
            env["IS_SNAPSHOTTING_ENABLED"] = "y"
            env["SNAPSHOT_EVERY"] = str(self.snapshot_every)
        return env


def _parse(name: str, text: str, parser: Callable[[str], Any]) -> Any:
    try:
        return parser(text)
    except ValueError as e:
        raise SettingsError(f"{name}: {e}") from None


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


def _count(text: str) -> int:
    value = _whole(text)
    if value < 0:
        raise ValueError(f"{text!r} is negative")
    return value


def _positive_int(text: str) -> int:
    value = _whole(text)
    if value < 1:
        raise ValueError(f"{text!r} must be at least 1")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        raise ValueError(f"{text!r} is not a number of seconds")
    return value


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise ValueError("must be more than 0 seconds")
    return value


def _kek(text: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError("is not base64") from None
    if len(key) != 32:
        raise ValueError(f"must be base64 of 32 bytes (AES-256), got {len(key)} bytes")
    return key


def _origin(text: str) -> str:
    # signed-note key names (the origin is the key's name): no spaces, no "+", no control characters
    if not text or "+" in text or any(ch.isspace() or ord(ch) < 0x20 for ch in text):
        raise ValueError("must be one word without spaces or '+', e.g. 'caseledger.example.com/log'")
    return text


def _rate_limit(text: str) -> str:
    from limits import parse_many  # Flask-Limiter's own parser: what it accepts, we accept

    parse_many(text)
    return text


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


_PARSERS: dict[str, Callable[[str], Any]] = {
    "home": Path, "policy_dir": Path, "kek_file": Path, "signing_key_file": Path, "verifier_key_file": Path,
    "checkpoint_dir": Path, "log_origin": _origin, "public_log_rate_limit": _rate_limit, "reports_dir": Path, "pg_bindir": Path,
    "aggregate_cache": _count, "snapshot_every": _count, "kek": _kek, "clock_skew_seconds": _seconds,
    "key_cache_seconds": _seconds, "db_timeout_seconds": _positive_seconds, "scheduler_retry_seconds": _positive_seconds,
    "scheduler_check_seconds": _positive_seconds, "scheduler_workers": _positive_int, "scheduler_jobs": _names,
}


def _check_database_url(url: str) -> None:
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        return
    if url.startswith(("postgres://", "postgresql://")):
        try:
            postgres_env(url)
        except ValueError as e:
            raise SettingsError(f"CASELEDGER_DATABASE_URL: {e}") from None
        return
    scheme = url.split(":", 1)[0] if ":" in url else url[:20]  # never echo a password
    raise SettingsError(f"CASELEDGER_DATABASE_URL: unsupported {scheme!r}; use sqlite:///path or postgresql://…")


def _database_env(database_url: str, timeout: float = 2.0) -> dict[str, str]:
    url = urlparse(database_url)
    if url.scheme == "sqlite":
        path = Path(unquote(database_url[len("sqlite:///"):]))
        path.parent.mkdir(parents=True, exist_ok=True)
        return {"PERSISTENCE_MODULE": "ledger.sqlite_store:LedgerSQLiteFactory", "SQLITE_DBNAME": str(path),
                "SQLITE_LOCK_TIMEOUT": "10", "APPLICATION_RECORDER_TOPIC": "ledger.recorders:LedgerSQLiteRecorder"}
    return postgres_env(database_url, timeout=timeout)  # one server, or a primary and its standbys: ledger.pgurl


#: Every variable, in the order of the README's table.
VARIABLES: tuple[Variable, ...] = tuple(f.metadata["variable"] for f in dataclasses.fields(Settings)
                                        if "variable" in f.metadata)
