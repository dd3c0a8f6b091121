"""Before a ledger is built: can its database be reached, and does it hold a ledger yet?

Reading must never create. A mistyped ``CASELEDGER_HOME`` (or database URL) would otherwise become
a new, empty ledger with a new key-encryption key, and every read would answer "nothing" with exit
code 0. So everything but the commands that create a ledger (``db init``, ``serve``, ``demo``)
asks here first, through ``ledger.bootstrap.build(create=False)``.

On PostgreSQL, the pool eventsourcing opens retries a failing connection until its timeout and
then says only that it timed out. One direct connection first, with libpq's own connect timeout,
names the actual problem (no such database, connection refused, wrong password) at once.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from urllib.parse import unquote

import psycopg

from ledger.pgurl import connect_kwargs, servers
from ledger.settings import Settings

#: Seconds to wait for a PostgreSQL server to answer before saying it does not.
CONNECT_TIMEOUT_SECONDS = 3
#: The events table eventsourcing creates: named after the application on PostgreSQL.
PG_EVENTS_TABLE = "caseledger_events"
SQLITE_EVENTS_TABLE = "stored_events"

_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]*@", re.IGNORECASE)


class DatabaseUnavailable(RuntimeError):
    """The database cannot be used at all; the message is one line saying what to do."""


class LedgerMissing(RuntimeError):
    """There is no ledger (or no key to read it with) where the settings point; one line."""


def redact(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``: for anything printed or logged."""
    return _PASSWORD.sub(r"\g<head>***@", text)


def location(settings: Settings) -> str:
    """Where the settings say the ledger is, fit to print (never a password)."""
    if settings.backend == "sqlite":
        path = sqlite_path(settings)
        return str(settings.home) if path == settings.home / "caseledger.db" else str(path)
    schema = settings.persistence_env().get("POSTGRES_SCHEMA")
    return redact(settings.database_url.split("?", 1)[0]) + (f" (schema {schema})" if schema else "")


def sqlite_path(settings: Settings) -> Path:
    return Path(unquote(settings.database_url[len("sqlite:///"):]))


def missing_message(settings: Settings) -> str:
    return (f"no ledger at {location(settings)} (CASELEDGER_HOME={settings.home}); "
            "run 'caseledger db init' to create one")


def ledger_exists(settings: Settings) -> bool:
    """Whether the ledger's tables exist; :class:`DatabaseUnavailable` if the database cannot be reached."""
    if settings.backend == "sqlite":
        return _sqlite_has_ledger(sqlite_path(settings))
    return _postgres_has_ledger(settings)


def _sqlite_has_ledger(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        # Read-only: looking must not create or change the file.
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                               (SQLITE_EVENTS_TABLE,)).fetchone()
    except sqlite3.DatabaseError as e:
        if "not a database" in str(e):
            raise DatabaseUnavailable(f"{path} is not a SQLite database; fix CASELEDGER_DATABASE_URL or "
                                      "CASELEDGER_HOME") from None
        return True  # e.g. locked for the moment: it is there, and opening it will say the rest
    return row is not None


def _postgres_has_ledger(settings: Settings) -> bool:
    env = settings.persistence_env()
    where = servers(env)
    try:
        with psycopg.connect(**{**connect_kwargs(env), "connect_timeout": CONNECT_TIMEOUT_SECONDS}) as conn:
            row = conn.execute("SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = %s AND tablename = %s",
                               (env.get("POSTGRES_SCHEMA") or "public", PG_EVENTS_TABLE)).fetchone()
    except psycopg.OperationalError as e:
        raise DatabaseUnavailable(_connection_problem(str(e), env, where)) from None
    return row is not None


def _connection_problem(message: str, env: dict[str, str], where: str) -> str:
    """One line for a failed connection: what is wrong, and what to do."""
    dbname, user = env["POSTGRES_DBNAME"], env["POSTGRES_USER"]
    prefix = "CASELEDGER_DATABASE_URL: "
    if "does not exist" in message and "database" in message:
        return (f"{prefix}database {dbname!r} does not exist on {where}; create it "
                f"(createdb -h {env['POSTGRES_HOST']} -p {env['POSTGRES_PORT']} -U {user} {dbname}) or fix the URL")
    if "password authentication failed" in message or "no password supplied" in message:
        return f"{prefix}{where} refused user {user!r} (wrong or missing password); fix the user or password in the URL"
    if "role" in message and "does not exist" in message:
        return f"{prefix}there is no user {user!r} on {where}; fix the user in the URL"
    if "timeout expired" in message:
        return (f"{prefix}no answer from PostgreSQL at {where} within {CONNECT_TIMEOUT_SECONDS} s; "
                "check the host and port, and that the server is running")
    if "read-only" in message or "hot standby" in message:  # target_session_attrs=read-write found no primary
        return (f"{prefix}no server at {where} accepts writes (each is a standby, or read-only); promote a "
                "standby, or fix the URL")
    if "Connection refused" in message:
        return f"{prefix}nothing listens at {where} (connection refused); start PostgreSQL or fix the host and port"
    detail = " ".join(message.split())
    return f"{prefix}cannot connect to PostgreSQL at {where}: {redact(detail)}"
