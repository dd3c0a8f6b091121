"""PostgreSQL URLs, for one server or for a primary with standbys (libpq's multi-host URL).

``postgresql://user:password@host1:5432,host2:5432/db?target_session_attrs=read-write`` is libpq's
own syntax: a new connection tries the hosts in turn and, with ``target_session_attrs=read-write``,
keeps only a server that accepts writes — the primary, wherever it is after a failover. The URL is
parsed by libpq itself (``psycopg.conninfo``), so what libpq accepts is accepted, and a parameter
it would refuse at the first connection is refused here, when the settings are read.

The result is eventsourcing's ``POSTGRES_*`` environment. Host and port lists go through as they
are (``POSTGRES_HOST=host1,host2``, ``POSTGRES_PORT=5432,5433``; libpq splits them). The other
libpq parameters, which eventsourcing's factory has no setting for, go as one conninfo string
under :data:`LIBPQ_OPTIONS`, read by ``ledger.pg_store.LedgerPostgresFactory``; a URL without any
keeps eventsourcing's own factory (and so the ``PERSISTENCE_MODULE`` older code looks for;
new code asks :func:`is_postgres`). ``schema`` and ``pool_size`` are ours, not libpq's.

Everything else that opens its own connection to the ledger's database takes its arguments from
:func:`connect_kwargs`, so it reaches the same server as the ledger's pool.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping
from urllib.parse import parse_qsl, urlencode

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

#: Query parameters of the URL that are ours; every other one is handed to libpq.
OUR_PARAMETERS = ("schema", "pool_size")
#: The eventsourcing environment key of the libpq parameters its factory would drop.
LIBPQ_OPTIONS = "POSTGRES_LIBPQ_OPTIONS"
LIBRARY_FACTORY = "eventsourcing.postgres"
OPTIONS_FACTORY = "ledger.pg_store:LedgerPostgresFactory"
#: libpq's values (PostgreSQL 14+; psycopg implements ``prefer-standby`` itself).
SESSION_ATTRS = ("any", "read-write", "read-only", "primary", "standby", "prefer-standby")


def postgres_env(url: str, *, timeout: float = 2.0) -> dict[str, str]:
    """eventsourcing's environment for a ``postgresql://`` URL; ValueError (never echoing the
    password) if libpq would not accept it. ``timeout``: ``CASELEDGER_DB_TIMEOUT_SECONDS``."""
    base, _, query = url.partition("?")
    ours: dict[str, str] = {}
    theirs: list[tuple[str, str]] = []
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in OUR_PARAMETERS:
            ours[name] = value
        else:
            theirs.append((name, value))
    try:
        params = conninfo_to_dict(base + (f"?{urlencode(theirs)}" if theirs else ""))
    except psycopg.Error as e:
        raise ValueError(_without_quoted(str(e))) from None
    hosts = params.pop("host", "") or "127.0.0.1"
    ports = params.pop("port", "") or "5432"
    _check_servers(hosts, ports)
    _check_options(params, ours)
    env = {
        "PERSISTENCE_MODULE": LIBRARY_FACTORY,
        "POSTGRES_DBNAME": params.pop("dbname", "") or "caseledger",
        "POSTGRES_HOST": hosts,
        "POSTGRES_PORT": ports,
        "POSTGRES_USER": params.pop("user", "") or "postgres",
        "POSTGRES_PASSWORD": params.pop("password", "") or "",
        "POSTGRES_POOL_SIZE": ours.get("pool_size") or "5",
        # How long a transaction waits for a pooled connection (whole seconds here; the composition
        # root sets the exact value, ledger.outage), and the connect timeout of the read models' own
        # connections. Short, so that an API request in an outage is answered 503 at once; a failover
        # is ridden out by the pool, which keeps trying the hosts, and by the callers' retries.
        "POSTGRES_CONNECT_TIMEOUT": str(max(1, math.ceil(timeout))),
        # The Merkle log is appended by our recorder inside the events' transaction; the
        # database-function insert path would bypass it, so it stays off.
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
        "APPLICATION_RECORDER_TOPIC": "ledger.recorders:LedgerPostgresRecorder",
    }
    if params:
        env["PERSISTENCE_MODULE"] = OPTIONS_FACTORY
        env[LIBPQ_OPTIONS] = make_conninfo("", **params)
    if ours.get("schema"):
        env["POSTGRES_SCHEMA"] = ours["schema"]
    return env


def is_postgres(env: Mapping[str, Any]) -> bool:
    """Whether an eventsourcing environment made by :func:`postgres_env` is PostgreSQL's."""
    return env.get("PERSISTENCE_MODULE") in (LIBRARY_FACTORY, OPTIONS_FACTORY)


def libpq_options(env: Mapping[str, Any]) -> dict[str, str]:
    return conninfo_to_dict(str(env.get(LIBPQ_OPTIONS) or ""))


def connect_kwargs(env: Mapping[str, Any]) -> dict[str, Any]:
    """``psycopg.connect()`` keyword arguments for the database of a ``POSTGRES_*`` environment:
    the same hosts, ports and libpq options as the ledger's own pool."""
    return {"host": env.get("POSTGRES_HOST") or "127.0.0.1", "port": str(env.get("POSTGRES_PORT") or "5432"),
            "dbname": env.get("POSTGRES_DBNAME") or "caseledger", "user": env.get("POSTGRES_USER") or "postgres",
            "password": env.get("POSTGRES_PASSWORD") or None, **libpq_options(env)}


def servers(env: Mapping[str, Any]) -> str:
    """``host:port`` of every server the environment names, for messages."""
    hosts = str(env.get("POSTGRES_HOST") or "127.0.0.1").split(",")
    ports = str(env.get("POSTGRES_PORT") or "5432").split(",")
    ports = ports * len(hosts) if len(ports) == 1 else ports
    return ", ".join(f"{host}:{port or 5432}" for host, port in zip(hosts, ports))


def _check_servers(hosts: str, ports: str) -> None:
    host_list, port_list = hosts.split(","), ports.split(",")
    if len(port_list) not in (1, len(host_list)):
        raise ValueError(f"{len(port_list)} ports for {len(host_list)} hosts; give one port per host, or one for all")
    for port in port_list:
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"port {port!r} is not a port number")


def _check_options(params: Mapping[str, str], ours: Mapping[str, str]) -> None:
    attrs = params.get("target_session_attrs")
    if attrs is not None and attrs not in SESSION_ATTRS:
        raise ValueError(f"target_session_attrs={attrs!r}: use one of {', '.join(SESSION_ATTRS)}")
    size = ours.get("pool_size")
    if size and not (size.isdigit() and int(size) > 0):
        raise ValueError(f"pool_size={size!r} is not a whole number above 0")


def _without_quoted(message: str) -> str:
    """libpq's message, minus what it quotes from the URL (that could be the password) — except a
    parameter's name, which is what to fix."""
    message = " ".join(message.split())
    if message.startswith(("invalid URI query parameter", "invalid connection option")):
        return message
    return re.sub(r'"[^"]*"', '"…"', message)
