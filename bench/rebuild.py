"""Rebuild speed of the read models vs. the raw speed of reading + decoding the same notifications.

    python -m bench.rebuild [--quick] [--events N[,N…]] [--backend postgres|sqlite|both] [--rounds R] [--workers W]
                            [--per-model]

Default: 100,000 and 1,000,000 events on PostgreSQL (``--quick``: 10,000, both backends).
PostgreSQL is ``CASELEDGER_TEST_PG_DSN`` when set, else a throwaway cluster. Events are made by
the real domain and application code, saved in big transactions: interactions imported in
batches (3 events each: received, registered, routed) and tickets (20 % of the events: received,
classified, assigned, started; every fifth also resolved, fed back, accepted and closed) saved 250
at a time. Every command has its own business time, to the second (as in a real log, where read
models' caches of parsed and formatted times help far less than with a few shared times). Every figure is from one process, the baselines measured right before the rebuilds:

- read + decode, eventsourcing: ``select_notifications`` pages + ``facts_mapper().to_domain_event``
  (what any consumer of the log does; the ratio target is against this);
- read + decode, lean: the runtime's own reading (``ViewDatabase.notifications`` +
  ``projections.decode``), i.e. the floor under any rebuild;
- rebuild of the four original read models (ticket list, complaint list, KPI counters, event
  counts) and of every read model in ``projections.catalog``, in this process and split over
  ``--workers`` processes (``projections.parallel``; default: one per core), whose digests must
  equal the single process's;
- the floor under a rebuild of all of them: the lean reading plus writing the rows they end up
  with and nothing else (values already encoded, the rebuild's own fastest write path, indexes
  built after; :func:`floor`) — how close any rebuild of these rows could come;
- with ``--per-model``: each read model rebuilt alone (reading and decoding included), to show
  where the time goes.

Besides the wall-clock ratio, each rebuild in this one process gets its ratio in CPU seconds of
this process (``time.process_time``): on a machine busy with other work the wall clock counts the
time the process waited for a core, the CPU seconds do not. (On PostgreSQL the server's CPU is
not in it; the wall-clock ratio is the target's.)

Every rebuild starts cold, as a new ``caseledger projections rebuild`` process would: new
projection objects and empty module caches (``forget_cached_answers``) — otherwise later rounds
find this very log's times and ids already parsed and formatted. The 1-minute load average after
each round is printed with each row: the machine's other work takes cores from the parallel
rebuild first.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import psycopg

from bench.common import fresh_database_url, machine, postgres_dsn, print_table
from domain.context import Context
from domain.ticket import Ticket
from ledger.bootstrap import build
from projections.cases import ComplaintList, TicketList
from projections.catalog import PROJECTIONS
from projections.decode import EventDecoder, forget_recent_ids
from projections.event_counts import EventCounts
from projections.following import collections_paused
from projections.kpi_counters import KpiCounters
from projections.runtime import ProjectionRunner
from projections.store import ViewDatabase

T0 = datetime(2025, 9, 1, 9, 0, tzinfo=timezone(timedelta(hours=8)))
ORIGINAL = (TicketList, ComplaintList, KpiCounters, EventCounts)
BATCH = 5000


def ctx(second: float, actor: str = "agent-li") -> Context:
    return Context(actor, "agent", T0 + timedelta(seconds=second), uuid.uuid4().hex)


def generate(ledger, events: int) -> None:
    customers = [str(ledger.register_customer(ctx(0), kind="individual", tier="general", contact={}).id)
                 for _ in range(100)]
    tickets, made = [], 0
    while made < events // 5:
        n = len(tickets)
        at = 60 + n * 41  # seconds after T0: every ticket, and every step of it, at its own time
        policy = ledger.policy_for_new_case(ctx(at))
        ticket = Ticket.receive(id=uuid.uuid4(), customer_id=customers[n % 100], channel="web", summary=None,
                                first_contact_owner="agent-li", policy=policy, ctx=ctx(at))
        ticket.classify(priority="normal", complexity="general", high_risk=False, policy=policy, ctx=ctx(at + 60))
        ticket.assign(handler=f"agent-{n % 9}", team="mobile", policy=policy, ctx=ctx(at + 130))
        ticket.start_work(policy=policy, ctx=ctx(at + 190))
        made += 4
        if n % 5 == 0:
            ticket.resolve(resolution="fixed", policy=policy, ctx=ctx(at + 1800))
            ticket.feed_back_result(channel="phone", policy=policy, ctx=ctx(at + 1860))
            ticket.record_acceptance(accepted=True, policy=policy, ctx=ctx(at + 1930))
            ticket.close(policy=policy, ctx=ctx(at + 1990))
            made += 4
        tickets.append(ticket)
        if len(tickets) % 250 == 0:
            ledger.save(*tickets[-250:])
    ledger.save(*tickets[len(tickets) - len(tickets) % 250:])
    remaining = max(events - (ledger.recorder.max_notification_id() or 0), 0)
    records = [(ctx(600 + n * 7), {"channel": "phone", "direction": "inbound", "customer_id": customers[n % 100],
                                     "agent_id": f"agent-{n % 9}", "queue": "broadband"})
               for n in range(remaining // 3)]
    ledger.import_interactions(records, batch_size=2000)


def read_with_eventsourcing(ledger) -> int:
    mapper, count, after = ledger.facts_mapper(), 0, 0
    while page := ledger.recorder.select_notifications(start=after + 1, limit=BATCH):
        for notification in page:
            mapper.to_domain_event(notification)
        count += len(page)
        after = page[-1].id
    return count


def read_lean(ledger, db) -> int:
    decoder, count, after = EventDecoder(ledger), 0, 0
    while rows := db.notifications(ledger.recorder.events_table_name, after, BATCH):
        decoder.events(rows)
        count += len(rows)
        after = rows[-1][0]
    return count


def floor(ledger, db: ViewDatabase, rounds: int) -> tuple[float, int]:
    """A floor under any rebuild that ends with the rows the read models hold now (a finished
    rebuild of all of them): the lean reading with garbage collection paused (as a rebuild reads),
    plus the write half with nothing else — those rows, already as stored values, written again
    into emptied tables by the rebuild's own fastest path (PostgreSQL ``COPY``, SQLite
    ``executemany`` of plain inserts; one transaction), the secondary indexes built afterwards, as
    a rebuild does. Seconds (the sum of both medians over ``rounds``) and the rows written."""
    with collections_paused():
        reading = statistics.median(seconds(lambda: read_lean(ledger, db)) for _ in range(rounds))
    tables = [table for cls in PROJECTIONS for table in cls.tables]
    with db.reading() as cur:
        data = {t.name: cur.execute(f"SELECT {', '.join(t.column_names)} FROM {t.name}").fetchall() for t in tables}

    def write() -> None:
        with db.transaction() as cur:
            db.drop_tables(cur, tables)
        db.create_tables(tables, indexes=False)
        with db.transaction() as cur:  # RowCache.write's inserts without its value checks: a floor
            for table in tables:
                if cur.postgres and data[table.name]:
                    with cur.raw.copy(table.copy_statement()) as copy:
                        for values in data[table.name]:
                            copy.write_row(values)
                elif data[table.name]:
                    cur.executemany(table.insert_statement(), data[table.name])
        db.create_tables(tables)

    return reading + statistics.median(seconds(write) for _ in range(rounds)), sum(map(len, data.values()))


def forget_cached_answers() -> None:
    """Empty every ``functools`` cache of caseledger's modules (parsed and formatted times, finding
    ids, deadlines, …) and the decoder's recent ids: each round starts as cold as a new process, or
    later rounds would find the answers for this very log already there."""
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in ("domain", "projections", "ledger"):
            for value in list(vars(module).values()):
                if hasattr(value, "cache_clear") and hasattr(value, "cache_info"):
                    value.cache_clear()
    forget_recent_ids()


def peak_rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # kilobytes on Linux


def seconds(fn, cpu: list[float] | None = None) -> float:
    """Wall-clock seconds of ``fn()``; its CPU seconds in this process are appended to ``cpu``."""
    started, started_cpu = time.perf_counter(), time.process_time()
    fn()
    if cpu is not None:
        cpu.append(time.process_time() - started_cpu)
    return time.perf_counter() - started


def measure(backend: str, dsn: str | None, events: int, rounds: int, workers: int,
            per_model: bool = False) -> list[list[object]]:
    url = fresh_database_url(backend, dsn)
    ledger = build({"CASELEDGER_DATABASE_URL": url, "CASELEDGER_HOME": f"/tmp/caseledger-bench-{uuid.uuid4().hex[:8]}"})
    started = time.perf_counter()
    generate(ledger, events)
    total = ledger.recorder.max_notification_id()
    print(f"{backend}: generated {total:,} events in {time.perf_counter() - started:.0f} s; "
          f"peak RSS so far {peak_rss_mib():,.0f} MiB", flush=True)
    variants = {"4 original read models": (ORIGINAL, 1), f"all {len(PROJECTIONS)} read models": (PROJECTIONS, 1)}
    if workers > 1:
        variants[f"all {len(PROJECTIONS)} read models, {workers} processes"] = (PROJECTIONS, workers)
    if per_model:
        variants.update({f"{cls.name} alone": ((cls,), 1) for cls in PROJECTIONS})
    times: dict[str, list[float]] = {"eventsourcing": [], "lean": [], **{name: [] for name in variants}}
    loads: dict[str, list[float]] = {name: [] for name in times}
    cpu: dict[str, list[float]] = {name: [] for name in times}  # this process's CPU seconds (not the server's)
    digests: dict[str, dict[str, str]] = {}
    lean_db = ViewDatabase.for_ledger(ledger)
    for _ in range(rounds):
        gc.collect()  # every round starts on a collected heap (the first one: after generating the log)
        times["eventsourcing"].append(seconds(lambda: read_with_eventsourcing(ledger), cpu["eventsourcing"]))
        loads["eventsourcing"].append(os.getloadavg()[0])
        times["lean"].append(seconds(lambda: read_lean(ledger, lean_db), cpu["lean"]))
        loads["lean"].append(os.getloadavg()[0])
        for name, (classes, processes) in variants.items():
            # Cold, as a rebuild process starts: new projections, and no time or id cached by an earlier round.
            runner = ProjectionRunner(ledger, [cls(ledger) for cls in classes], batch_size=BATCH)
            forget_cached_answers()
            times[name].append(seconds(lambda runner=runner, processes=processes: runner.rebuild(workers=processes), cpu[name]))
            loads[name].append(os.getloadavg()[0])
            # The process's peak so far (it only grows): a rise after a rebuild is that rebuild's peak.
            # Worker processes of a parallel rebuild are children: their largest peak is shown too.
            print(f"{backend}: rebuild {name}: peak RSS so far {peak_rss_mib():,.0f} MiB "
                  f"(largest child {peak_rss_mib(resource.RUSAGE_CHILDREN):,.0f} MiB)", flush=True)
            if classes is PROJECTIONS and name not in digests:
                digests[name] = runner.digests()
            runner.close()
            # Let go of its rows before anything else is timed: a heap still holding a rebuild's row
            # caches makes every garbage collection in the next measurement slower (a baseline read
            # measured beside the previous round's runner took up to 1.6× as long, which flattered
            # every later round's ratio).
            del runner
            gc.collect()
    least, stored = floor(ledger, lean_db, rounds)  # last: it rewrites the read models' tables
    lean_db.close()
    if len({json.dumps(d, sort_keys=True) for d in digests.values()}) > 1:
        raise AssertionError(f"rebuilds in one and in {workers} processes differ: {digests}")
    baseline = statistics.median(times["eventsourcing"])
    lean = statistics.median(times["lean"])
    baseline_cpu = statistics.median(cpu["eventsourcing"])
    rows = [[backend, f"{total:,}", "read + decode, eventsourcing (baseline)", f"{baseline:.2f}",
             f"{total / baseline:,.0f}", "1.00×", "1.00×", _range(loads["eventsourcing"]), ""],
            [backend, f"{total:,}", "read + decode, lean (runtime's reading)", f"{lean:.2f}",
             f"{total / lean:,.0f}", f"{baseline / lean:.2f}×", _cpu_ratio(baseline_cpu, cpu["lean"]),
             _range(loads["lean"]), ""]]
    rows.append([backend, f"{total:,}", f"floor: lean read + writing the {stored:,} rows alone (no handlers)",
                 f"{least:.2f}", f"{total / least:,.0f}", f"{baseline / least:.2f}×", "—", "",
                 "the best any rebuild of these rows can do"])
    for name in variants:
        spent = statistics.median(times[name])
        rate, ratio = total / spent, baseline / spent
        spread = f" ({min(baseline / t for t in times[name]):.2f}–{max(baseline / t for t in times[name]):.2f})" \
            if rounds > 1 else ""
        rows.append([backend, f"{total:,}", f"rebuild {name}", f"{spent:.2f}", f"{rate:,.0f}", f"{ratio:.2f}×{spread}",
                     _cpu_ratio(baseline_cpu, cpu[name]) if variants[name][1] == 1 else "—", _range(loads[name]), ("" if name.endswith(" alone") else
                                           "met" if rate >= 50_000 and ratio >= 0.5 else
                                           "ratio met" if ratio >= 0.5 else "missed")])
    ledger.close()
    if backend == "postgres":
        schema = url.rsplit("schema=", 1)[1]
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return rows


def _cpu_ratio(baseline_cpu: float, spent: list[float]) -> str:
    """The ratio in this process's CPU seconds: what a busy machine's other work does not inflate
    (it takes the CPU away, it does not add to ours). Not the database server's share (PostgreSQL)."""
    return f"{baseline_cpu / statistics.median(spent):.2f}×"


def _range(values: list[float]) -> str:
    return f"{min(values):.1f}" if max(values) - min(values) < 0.05 else f"{min(values):.1f}–{max(values):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 events on both backends")
    parser.add_argument("--events", help="comma-separated event counts (default 100000,1000000)")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"))
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes for the parallel rebuild of all read models (default: the cores; 1: none)")
    parser.add_argument("--per-model", action="store_true",
                        help="also rebuild each read model alone (where the time goes)")
    args = parser.parse_args()
    counts = [int(n) for n in args.events.split(",")] if args.events else (
        [10_000] if args.quick else [100_000, 1_000_000])
    backend = args.backend or ("both" if args.quick else "postgres")
    backends = ("sqlite", "postgres") if backend == "both" else (backend,)
    print(f"Machine: {machine()}\n")
    rows = []
    with postgres_dsn() as dsn:
        for events in counts:
            rounds = args.rounds or (3 if events <= 100_000 else 1)
            for name in backends:
                rows += measure(name, dsn, events, rounds, args.workers, args.per_model)
    print_table("Full rebuild vs reading + decoding the same notifications (median of rounds; ratio = baseline "
                "time / time; CPU ratio: the same in this process's CPU seconds, for rebuilds in this one process; "
                "load = 1-minute load average after each round)",
                ["backend", "events", "what", "seconds", "events/s", "ratio (range)", "CPU ratio (1 process)", "load",
                 "≥ 50k/s and ≥ 0.5×"],
                rows)


if __name__ == "__main__":
    main()
