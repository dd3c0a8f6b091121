"""Rebuild speed of all read models vs. the raw speed of reading + decoding the same notifications.

    python bench/rebuild.py [N] [--quick]     # N events (default 100 000; --quick: 10 000)

Runs on PostgreSQL: ``CASELEDGER_TEST_PG_DSN`` when set, else a throwaway cluster. Events are
generated fast: interactions imported in big batches (3 events each: received, registered,
routed), plus tickets driven through a few steps so every read model has work to do.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from domain.context import Context  # noqa: E402
from ledger.bootstrap import build  # noqa: E402
from ledger.throwaway_pg import ThrowawayPostgres  # noqa: E402
from projections.catalog import runner_for  # noqa: E402

T0 = datetime(2025, 9, 1, 9, 0, tzinfo=timezone(timedelta(hours=8)))


def ctx(minute: int, actor: str = "agent-li") -> Context:
    return Context(actor, "agent", T0 + timedelta(minutes=minute), uuid.uuid4().hex)


def generate(ledger, events: int) -> None:
    customers = [str(ledger.register_customer(ctx(0), kind="individual", tier="general", contact={}).id)
                 for _ in range(100)]
    ticket_events = events // 5  # 20 % ticket events: 4 per ticket (received, classified, assigned, started)
    for n in range(ticket_events // 4):
        t = ledger.open_ticket(ctx(1 + n // 50), customer_id=customers[n % 100], channel="web")
        ledger.act("ticket", t.id, "classify", ctx(2 + n // 50), {"priority": "normal", "complexity": "general",
                                                                   "high_risk": False})
        ledger.act("ticket", t.id, "assign", ctx(3 + n // 50), {"handler": f"agent-{n % 9}", "team": "mobile"})
        ledger.act("ticket", t.id, "start_work", ctx(4 + n // 50), {})
    remaining = max(events - (ledger.recorder.max_notification_id() or 0), 0)
    records = [(ctx(10 + n // 100), {"channel": "phone", "direction": "inbound", "customer_id": customers[n % 100],
                                     "agent_id": f"agent-{n % 9}", "queue": "broadband"})
               for n in range(remaining // 3)]
    ledger.import_interactions(records, batch_size=2000)


def raw_read(ledger) -> int:
    count, after = 0, 0
    while page := ledger.recorder.select_notifications(start=after + 1, limit=1000):
        for notification in page:
            ledger.mapper.to_domain_event(notification)
        count += len(page)
        after = page[-1].id
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events", nargs="?", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="10 000 events")
    args = parser.parse_args()
    events = 10_000 if args.quick else args.events
    dsn = os.environ.get("CASELEDGER_TEST_PG_DSN")
    pg = None if dsn else ThrowawayPostgres().start()
    dsn = dsn or pg.dsn
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        ledger = build({"CASELEDGER_DATABASE_URL": f"{dsn}{'&' if '?' in dsn else '?'}schema={schema}",
                        "CASELEDGER_HOME": "/tmp/caseledger-bench"})
        started = time.perf_counter()
        generate(ledger, events)
        total = ledger.recorder.max_notification_id()
        Console(stderr=True).print(f"generated {total} events in {time.perf_counter() - started:.1f} s")

        started = time.perf_counter()
        read = raw_read(ledger)
        raw_seconds = time.perf_counter() - started

        runner = runner_for(ledger, batch_size=1000)
        started = time.perf_counter()
        runner.rebuild()
        rebuild_seconds = time.perf_counter() - started
        runner.close()
        ledger.close()

        table = Table(title=f"Full rebuild of all read models, PostgreSQL, {read} events")
        for column in ("what", "seconds", "events/s", "ratio"):
            table.add_column(column, justify="right")
        table.add_row("read + decode notifications (baseline)", f"{raw_seconds:.2f}", f"{read / raw_seconds:,.0f}", "1.00")
        table.add_row("rebuild 4 read models", f"{rebuild_seconds:.2f}", f"{read / rebuild_seconds:,.0f}",
                      f"{rebuild_seconds / raw_seconds:.2f}× slower")
        Console().print(table)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        if pg:
            pg.stop()


if __name__ == "__main__":
    main()
