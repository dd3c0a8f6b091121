"""Integrity benchmarks: the cost of the Merkle log on append, verification speed, proof growth.

Every figure is a ratio against a baseline measured in the same process on the same database:
- append: our recorder (event + leaf + nodes in one transaction) vs eventsourcing's own recorder,
  one event per transaction and 100 per transaction; the two alternate, several rounds, and the
  table shows the median ratio and its range (other processes share the CPU);
- verify: full ``TransparencyLog.verify`` (as shipped, and without read-ahead threads; the
  reference verifier on the smallest size) vs plain hashlib SHA-256 over the same leaf bytes,
  already in memory; beside them the floor "reading the rows only": verify's own reader (the C scan
  with hashing off) over every page on one thread. Each verification is paired with a hashlib run
  just before it, and the ratio is the median of the pairs over ``VERIFY_ROUNDS`` rounds (5, quick
  or not: at 100k, hashlib alone swings between ~1.0M and ~1.7M leaves/s on the shared 2-core VM,
  so with 3 rounds one fast hashlib run could decide the median); the hashlib column shows its
  range;
- proofs: inclusion and consistency proof time at growing tree sizes (should grow like log n).
  The log is filled through the real recorder (``insert_events``) in batches of 5,000 events.

    python -m bench.integrity [--quick] [--backend sqlite|postgres|both] [--sizes 10000,100000,1000000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import StoredEvent

from bench.common import fresh_database_url, machine, postgres_dsn, print_table, timed
from ledger import logpages, logscan
from ledger.bootstrap import Settings, build, transparency_log
from ledger.keys import LogKeys
from ledger.logscan import LogScan

STATE = b'{"meta":{"actor_id":"agent-li","actor_role":"agent","occurred_at":"2025-09-01T09:00:00+08:00",' \
        b'"policy":"sop-2025@1","request_id":"r","reason":null},"channel":"phone","personal":{"subject":"c",' \
        b'"fields":{"content":"\xe5\xae\xbd\xe5\xb8\xa6\xe6\x96\xad\xe4\xba\x86"}}}'
TOPIC = "domain.interaction:Interaction.Received"


def recorder_for(url: str, merkle: bool):
    """A bare application recorder of either kind on ``url``."""
    from eventsourcing.persistence import InfrastructureFactory
    from eventsourcing.utils import Environment

    env = Settings.from_environ({"CASELEDGER_DATABASE_URL": url}).persistence_env()
    if not merkle:
        env.pop("APPLICATION_RECORDER_TOPIC")
    factory = InfrastructureFactory.construct(Environment("CaseLedger", env))
    return factory, factory.application_recorder()


def events(n: int) -> list[StoredEvent]:
    oid = uuid.uuid4()
    return [StoredEvent(originator_id=oid, originator_version=v + 1, topic=TOPIC, state=STATE) for v in range(n)]


def append_rate(recorder, total: int, per_transaction: int) -> float:
    batches = [events(per_transaction) for _ in range(total // per_transaction)]

    def run() -> None:
        for batch in batches:
            recorder.insert_events(batch)

    return total / timed(run)


def bench_append(backend: str, dsn: str | None, quick: bool, rounds: int) -> list[list[object]]:
    rows = []
    for per_tx, total in ((1, 500 if quick else 2000), (100, 10000 if quick else 50000)):
        recorders = {merkle: recorder_for(fresh_database_url(backend, dsn), merkle) for merkle in (False, True)}
        rates: dict[bool, list[float]] = {False: [], True: []}
        for merkle in (False, True):
            append_rate(recorders[merkle][1], min(total, 300), per_tx)  # warm up
        for _ in range(rounds):  # alternate, so that both see the same background load
            for merkle in (False, True):
                rates[merkle].append(append_rate(recorders[merkle][1], total, per_tx))
        for factory, _ in recorders.values():
            factory.close()
        ratios = sorted(with_log / raw for raw, with_log in zip(rates[False], rates[True]))
        ratio = statistics.median(ratios)
        rows.append([backend, per_tx, f"{rounds} × {total:,}", f"{statistics.median(rates[False]):,.0f}",
                     f"{statistics.median(rates[True]):,.0f}", f"{ratio:.2f}× ({ratios[0]:.2f}–{ratios[-1]:.2f})",
                     "≥ 0.8×: " + ("met" if ratio >= 0.8 else "missed"), load_average()])
    return rows


VERIFY_ROUNDS = 5  # verification rounds per size, quick or not (see the docstring)


def load_average() -> str:
    """The 1-minute load average when a measurement ends (the CPUs are shared with other processes)."""
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "-"


def fill(ledger, upto: int, done: int) -> int:
    while done < upto:
        batch = min(5000, upto - done)
        ledger.recorder.insert_events(events(batch))
        done += batch
    return done


def bench_verify_and_proofs(backend: str, dsn: str | None, sizes: list[int], rounds: int) -> tuple[list, list]:
    verify_rows, proof_rows = [], []
    url = fresh_database_url(backend, dsn)
    home = f"/tmp/caseledger-bench-keys-{uuid.uuid4().hex[:8]}"
    env = {"CASELEDGER_DATABASE_URL": url, "CASELEDGER_HOME": home}
    LogKeys.from_settings(Settings.from_environ(env)).init()
    ledger = build(env)
    log = transparency_log(ledger, env)
    done = 0
    for size in sizes:
        started = time.perf_counter()
        done = fill(ledger, size, done)
        print(f"{backend}: {size:,} leaves ({(time.perf_counter() - started):.0f} s to add)", flush=True)
        log.publish_checkpoint(datetime.now(UTC))
        proof_rows.append([backend, f"{size:,}", *proof_times(log, size)])
        verify_rows.append(verify_row(backend, log, size, rounds, reference=size == sizes[0]))
    ledger.close()
    return verify_rows, proof_rows


def verify_row(backend: str, log, size: int, rounds: int, reference: bool) -> list[object]:
    """Verification as shipped (pages read ahead by ``logscan.READ_AHEAD`` threads) and with no
    read-ahead (one thread), each as a ratio to hashlib over the same leaf bytes measured right
    before it."""
    scan = LogScan(log)
    leaf_bytes = [r.leaf_bytes for r in scan.leaf_records()]
    scan.close()
    shipped = logscan.READ_AHEAD
    ratios: dict[int, list[float]] = {shipped: [], 0: []}
    rates: dict[int, list[float]] = {shipped: [], 0: []}
    hash_rates = []
    try:
        for _ in range(rounds):
            for read_ahead, ratio_list in ratios.items():
                hash_seconds = timed(lambda: [hashlib.sha256(b"\x00" + b).digest() for b in leaf_bytes])
                logscan.READ_AHEAD = read_ahead
                report = None

                def run() -> None:
                    nonlocal report
                    report = log.verify()

                verify_seconds = timed(run)
                assert report.ok and report.leaves == size, report
                ratio_list.append(hash_seconds / verify_seconds)
                rates[read_ahead].append(size / verify_seconds)
                hash_rates.append(size / hash_seconds)
    finally:
        logscan.READ_AHEAD = shipped
    read_rate = size / min(timed(read) for read in [reading_only(log)] * rounds)
    reference_rate = "-"
    if reference:
        seconds = timed(lambda: log.verify(reference=True))
        reference_rate = f"{size / seconds:,.0f}"
    cells = []
    for read_ahead, ratio_list in ratios.items():
        values = sorted(ratio_list)
        cells += [f"{statistics.median(rates[read_ahead]):,.0f}",
                  f"{statistics.median(values):.2f}× ({values[0]:.2f}–{values[-1]:.2f})"]
    ratio = statistics.median(ratios[shipped])
    hash_cell = f"{statistics.median(hash_rates):,.0f} ({min(hash_rates):,.0f}–{max(hash_rates):,.0f})"
    return [backend, f"{size:,}", reference_rate, hash_cell,
            f"{read_rate:,.0f} ({read_rate / statistics.median(hash_rates):.2f}×)", *cells,
            "≥ 0.5×: " + ("met" if ratio >= 0.5 else "missed") + (" (C loop)" if logpages._scan else " (no C loop)")]


class _ScanWithoutHashing:
    """The C scan (``ledger.integrity._scan``) with hashing switched off: the same statements on the
    same kind of connection, each row read and parsed, nothing hashed or compared."""

    def __init__(self, scan: Any):
        self.scan = scan

    def __getattr__(self, name: str) -> Any:
        return getattr(self.scan, name)

    def postgres_copy_page(self, *args: Any) -> Any:
        return self.scan.postgres_copy_page(*args, False)

    def sqlite_page(self, *args: Any) -> Any:
        return self.scan.sqlite_page(*args, False)


def reading_only(log) -> Callable[[], None]:
    """The floor under verification: reading the rows verify reads, page after page on one thread
    (verify reads pages ``logscan.READ_AHEAD`` at a time), with verify's own reader — the C scan
    (libpq binary COPY, or SQLite's C API) with hashing off, or the Python path's queries if the
    extension is not built — and nothing hashed."""
    def read() -> None:
        source = logpages.PageSource.for_log(log, logscan.PAGE)  # its connection opened here, as verify's are
        scan = logpages._scan
        try:
            if scan is not None and source.shareable:
                logpages._scan = _ScanWithoutHashing(scan)
                first = 0
                while source._scan_in_c(first)[0] == logscan.PAGE:
                    first += logscan.PAGE
            else:
                for first in range(0, log.size(), logscan.PAGE):
                    source.leaf_page(first)
                    source.event_rows(first)
        finally:
            logpages._scan = scan
            source.close()
    return read


def proof_times(log, size: int, samples: int = 50) -> list[str]:
    import random

    rng = random.Random(size)
    inclusion, consistency = [], []
    for _ in range(samples):
        index = rng.randrange(size)
        started = time.perf_counter()
        log.inclusion_proof(index, size)
        inclusion.append(time.perf_counter() - started)
        old = rng.randrange(1, size)
        started = time.perf_counter()
        log.consistency_proof(old, size)
        consistency.append(time.perf_counter() - started)
    return [f"{statistics.median(inclusion) * 1000:.2f} ms", f"{statistics.median(consistency) * 1000:.2f} ms"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized run (10k and 100k leaves, fewer rounds)")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--sizes", help="comma-separated tree sizes (default 10k,100k; full run adds 1M)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else (
        [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000])
    rounds = 3 if args.quick else 5
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    print(f"Machine: {machine()}\n")
    with postgres_dsn() as dsn:
        append_rows, verify_rows, proof_rows = [], [], []
        for backend in backends:
            append_rows += bench_append(backend, dsn, args.quick, rounds)
            v, p = bench_verify_and_proofs(backend, dsn, sizes, VERIFY_ROUNDS)
            verify_rows += v
            proof_rows += p
    print_table("Append: Merkle-logging recorder vs eventsourcing's recorder (events/s, median of rounds)",
                ["backend", "events/tx", "events", "raw", "with log", "ratio (range)", "target", "load"], append_rows)
    print_table("Full verification vs plain SHA-256 over the same leaf bytes (leaves/s, median of rounds)",
                ["backend", "leaves", "reference verifier", "hashlib (range)",
                 "reading only: verify's reader, 1 thread, no hashing (vs hashlib)",
                 "verify", "ratio (range)",
                 "verify, no read-ahead", "ratio (range)", "target"], verify_rows)
    print_table("Proof time (median of 50) by tree size",
                ["backend", "leaves", "inclusion", "consistency"], proof_rows)


if __name__ == "__main__":
    main()
