"""Shared helpers for the benchmarks: databases to measure on, and a table printer."""

from __future__ import annotations

import os
import platform
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Callable

import psycopg

from cli import throwaway_pg
from ledger.settings import Settings


def postgres_dsn():  # noqa: ANN201 - a context manager of the DSN
    """The PostgreSQL server to measure on: ``CASELEDGER_TEST_PG_DSN``, else a throwaway cluster."""
    return throwaway_pg.postgres_dsn(Settings.from_environ())


def fresh_database_url(backend: str, pg_dsn: str | None) -> str:
    """An empty database: a new SQLite file, or a new PostgreSQL schema."""
    if backend == "sqlite":
        return f"sqlite:///{Path(tempfile.mkdtemp(prefix='caseledger-bench-')) / 'bench.db'}"
    schema = f"b_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{pg_dsn}?schema={schema}"


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def machine() -> str:
    load = "load average %.2f %.2f %.2f" % os.getloadavg()  # the machine is shared: say how busy it was
    return f"{platform.node()} · {os.cpu_count()} cores · {load} · Python {platform.python_version()} · {date.today()}"


def print_table(title: str, header: list[str], rows: list[list[object]]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    out = [f"### {title}", "", line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    text = "\n".join(out) + "\n"
    print(text)
    return text
